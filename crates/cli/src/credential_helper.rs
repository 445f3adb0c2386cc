//! `wharf git:credentials`, the git credential helper `git:remote` configures: git runs it
//! as `wharf git:credentials get` with `key=value` lines on stdin, and for the Wharf API's
//! host it answers with the API key as the password (git's HTTP Basic user name is ignored
//! by the server). Any other action or host gets no answer, so git asks elsewhere.

use reqwest::Url;

use crate::credentials::netrc_machine;

/// The user name git sends; the server looks only at the password.
const USERNAME: &str = "wharf";

/// What git asks about: the parts of the request this helper looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub protocol: Option<String>,
    pub host: Option<String>,
}

/// Git's `key=value` lines, up to a blank line or the end; unknown keys are ignored.
pub fn parse(input: &str) -> Request {
    let mut request = Request::default();
    for line in input.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "protocol" => request.protocol = Some(value.to_string()),
            "host" => request.host = Some(value.to_string()),
            _ => {}
        }
    }
    request
}

/// Whether the request is for the API at `api_url`: the same scheme, and the same host and
/// port (git sends `host:port` only when the port is not the scheme's default, as
/// [`netrc_machine`] writes it).
pub fn is_for(request: &Request, api_url: &Url) -> bool {
    let Some(host) = &request.host else {
        return false;
    };
    let protocol_matches = request
        .protocol
        .as_deref()
        .is_none_or(|protocol| protocol.eq_ignore_ascii_case(api_url.scheme()));
    protocol_matches && host.eq_ignore_ascii_case(&netrc_machine(api_url))
}

/// The helper's whole answer: what to print for `action` given git's `input`, if anything.
pub fn answer(action: &str, input: &str, api_url: &Url, key: Option<&str>) -> Option<String> {
    if action != "get" || !is_for(&parse(input), api_url) {
        return None;
    }
    key.map(|key| format!("username={USERNAME}\npassword={key}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("a valid test URL")
    }

    #[test]
    fn git_requests_parse_up_to_a_blank_line() {
        let check = |input: &str, protocol: Option<&str>, host: Option<&str>| {
            let expected = Request {
                protocol: protocol.map(str::to_string),
                host: host.map(str::to_string),
            };
            assert_eq!(parse(input), expected, "{input:?}");
        };
        check(
            "protocol=http\nhost=127.0.0.1:5000\n",
            Some("http"),
            Some("127.0.0.1:5000"),
        );
        check(
            "protocol=https\r\nhost=wharf.example.com\r\npath=myapp.git\r\n\r\nhost=late\n",
            Some("https"),
            Some("wharf.example.com"),
        );
        check("wwwauth[]=Basic realm=\"x\"\nhost=h=1\n", None, Some("h=1"));
        check("", None, None);
        check("garbage\n", None, None);
    }

    #[test]
    fn only_the_api_host_and_port_match() {
        let check = |input: &str, api: &str, expected: bool| {
            assert_eq!(
                is_for(&parse(input), &url(api)),
                expected,
                "{input:?} {api}"
            );
        };
        let local = "http://127.0.0.1:5000";
        check("protocol=http\nhost=127.0.0.1:5000\n", local, true);
        check("host=127.0.0.1:5000\n", local, true);
        check("protocol=http\nhost=127.0.0.1:5001\n", local, false);
        check("protocol=http\nhost=127.0.0.1\n", local, false);
        check("protocol=https\nhost=127.0.0.1:5000\n", local, false);
        check("protocol=http\n", local, false);
        let named = "https://Wharf.Example.com/";
        check("protocol=https\nhost=wharf.example.com\n", named, true);
        check("protocol=https\nhost=wharf.example.com:443\n", named, false);
        check("protocol=https\nhost=github.com\n", named, false);
        check(
            "protocol=https\nhost=wharf.example.com:8443\n",
            "https://wharf.example.com:8443",
            true,
        );
    }

    #[test]
    fn only_get_for_the_api_is_answered() {
        let api = url("http://127.0.0.1:5000");
        let input = "protocol=http\nhost=127.0.0.1:5000\n";
        assert_eq!(
            answer("get", input, &api, Some("KEY")).as_deref(),
            Some("username=wharf\npassword=KEY\n")
        );
        assert_eq!(answer("store", input, &api, Some("KEY")), None);
        assert_eq!(answer("erase", input, &api, Some("KEY")), None);
        assert_eq!(answer("get", input, &api, None), None);
        assert_eq!(
            answer(
                "get",
                "protocol=https\nhost=github.com\n",
                &api,
                Some("KEY")
            ),
            None
        );
    }
}
