"""Checks a static site's static.json the way Wharf's static server reads it, so that a
mistake fails the build with its reason rather than the dyno at start-up.

Usage: check_static_json.py BUILD_DIR. Prints one line per finding, each starting with
"warning: " (keys Wharf ignores), "error: " (then exits 1) or "root: " (the document root, last).
"""

import json
import os
import re
import sys

REDIRECT_STATUSES = {301, 302, 303, 307, 308}
SUPPORTED_KEYS = {"root", "clean_urls", "routes", "redirects", "headers", "error_page", "https_only"}
# An HTTP header name (RFC 9110 token).
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def site_file_problem(file):
    """Why a file named in static.json cannot be served from the root, or None."""
    if not isinstance(file, str) or not file.strip("/"):
        return "must name a file such as \"index.html\""
    if ".." in file.split("/"):
        return "must name a file inside the root, without .."
    return None


def problems_in(config):
    """Yields what is wrong with a parsed static.json."""
    if not isinstance(config, dict):
        yield "the top level must be an object ({...})"
        return
    if "root" in config and not isinstance(config["root"], str):
        yield '"root" must be a string'
    if "error_page" in config and site_file_problem(config["error_page"]):
        yield f'"error_page" {site_file_problem(config["error_page"])}'
    for key in ("clean_urls", "https_only"):
        if key in config and not isinstance(config[key], bool):
            yield f'"{key}" must be true or false'
    for key in ("routes", "redirects", "headers"):
        if key in config and not isinstance(config[key], dict):
            yield f'"{key}" must be an object'
            continue
        for pattern, value in config.get(key, {}).items():
            if not pattern.startswith("/"):
                yield f'{key}: "{pattern}" must start with / (it is matched against request paths)'
            if key == "routes" and site_file_problem(value):
                yield f'routes: "{pattern}" {site_file_problem(value)}'
            if key == "redirects":
                if not isinstance(value, dict) or not isinstance(value.get("url"), str) or not value["url"]:
                    yield f'redirects: "{pattern}" must be {{"url": "/new", "status": 301}}'
                elif value.get("status", 301) not in REDIRECT_STATUSES:
                    yield f'redirects: "{pattern}": status must be one of 301, 302, 303, 307, 308'
            if key == "headers":
                if not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
                    yield f'headers: "{pattern}" must map header names to strings'
                    continue
                for name in value:
                    if not HEADER_NAME.match(name):
                        yield f'headers: "{pattern}": "{name}" is not a valid header name'


def main(build_dir):
    path = os.path.join(build_dir, "static.json")
    config = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as file:
                config = json.load(file)
        except (ValueError, UnicodeDecodeError) as error:
            print(f"error: static.json is not valid JSON: {error}")
            return 1
        problems = list(problems_in(config))
        if problems:
            for problem in problems:
                print(f"error: static.json: {problem}")
            return 1
        for key in config:
            if key not in SUPPORTED_KEYS:
                print(f'warning: static.json: "{key}" is not supported by Wharf\'s static server; it is ignored')
    if "root" in config:
        root = config["root"]
    elif os.path.isdir(os.path.join(build_dir, "public_html")):
        root = "public_html"
    else:
        root = "."
    if os.path.isabs(root) or ".." in root.split("/"):
        print(f'error: static.json: root "{root}" must be a directory inside the app, without ..')
        return 1
    if not os.path.isdir(os.path.join(build_dir, root)):
        print(f'error: static.json: root "{root}" is not a directory in the app')
        return 1
    print(f"root: {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
