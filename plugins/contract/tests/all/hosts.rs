//! The `hosts` rule against hostile URLs.

use super::{f, found, verdict_of};

const RULE: &str = r#"{"rules": [{"hosts": {"pointer": "/links/*/url", "allowed":
    ["example.com", "*.example.org", "bücher.example", "10.0.0.1", "::1", "EXAMPLE.net."]}}]}"#;

/// The message of the one finding on `url`, or `None` if it passes.
fn refusal(url: &str) -> Option<String> {
    let content = serde_json::json!({"links": [{"url": url}]}).to_string();
    let verdict = verdict_of(&content, &[RULE]);
    assert!(verdict.findings.len() <= 1);
    verdict.findings.into_iter().next().map(|finding| {
        assert_eq!(finding.kind, "host-not-allowed");
        let location = finding.location.unwrap();
        assert_eq!(
            (location.pointer.as_str(), location.start),
            ("/links/0/url", 0)
        );
        assert_eq!(location.end as usize, url.len());
        assert!(url.is_empty() || !finding.message.contains(url));
        finding.message
    })
}

#[test]
fn allowed_hosts_pass() {
    for url in [
        "https://example.com/",
        "https://example.com:8443/path?q=1#x",
        "http://EXAMPLE.COM/",
        "https://Example.Com./",
        "https://a.example.org/",
        "https://deep.a.example.org/",
        "https://bücher.example/",
        "https://BÜCHER.example/",
        "https://xn--bcher-kva.example/",
        "https://example.net/",
        "http://10.0.0.1:8080/",
        "http://[::1]/",
        "http://[0:0:0:0:0:0:0:1]/",
        "wss://example.com/socket",
        // The URL Standard reads these IPv4 spellings as 10.0.0.1.
        "http://0xa.0.0.1/",
        "http://167772161/",
    ] {
        assert_eq!(refusal(url), None, "{url}");
    }
}

#[test]
fn other_hosts_are_refused() {
    for url in [
        "https://evil.test/",
        "https://example.org/",
        "https://example.com.evil.test/",
        "https://evilexample.com/",
        "https://notexample.org/",
        "https://example.org.evil.test/",
        "https://example.com../",
        // A Cyrillic "а": another host, as punycode.
        "https://exаmple.com/",
        "https://xn--bcher-kva.example.evil.test/",
        "http://10.0.0.2/",
        "http://127.0.0.1/",
        "http://[::2]/",
        // Wildcard entries never match addresses.
        "http://93.184.216.34/",
    ] {
        assert_eq!(
            refusal(url).as_deref(),
            Some("contract 0, rule 0 (hosts at `/links/*/url`): host not in the allowed list"),
            "{url}"
        );
    }
}

#[test]
fn user_info_tricks_are_refused_even_before_an_allowed_host() {
    for url in [
        "https://example.com@evil.test/",
        "https://example.com:443@evil.test/",
        "https://user:pass@example.com/",
        "https://user@a.example.org/",
        "https://@example.com/",
        "https://:@example.com/",
    ] {
        let message = refusal(url).unwrap_or_else(|| panic!("{url} passed"));
        assert!(
            message.ends_with("URL carries user info before its host")
                || message.ends_with("host not in the allowed list"),
            "{url}: {message}"
        );
    }
    assert!(
        refusal("https://example.com@evil.test/")
            .unwrap()
            .ends_with("user info before its host")
    );
}

#[test]
fn ambiguous_spellings_are_refused() {
    for url in [
        "https://evil.test\\@example.com/",
        "https://example.com\\.evil.test/",
        "https:\\\\example.com/",
        " https://example.com/",
        "https://example.com/\n",
        "https://exa\tmple.com/",
        "https://example.com/\u{0}",
    ] {
        let message = refusal(url).unwrap_or_else(|| panic!("{url:?} passed"));
        assert!(
            message.ends_with("backslash, whitespace or control character"),
            "{url:?}: {message}"
        );
    }
}

#[test]
fn values_that_are_not_urls_with_hosts_are_refused() {
    for (url, why) in [
        ("example.com", "not an absolute URL"),
        ("//example.com/", "not an absolute URL"),
        ("", "not an absolute URL"),
        ("https://", "not an absolute URL"),
        ("http://[::1/", "not an absolute URL"),
        ("mailto:a@example.com", "URL has no host"),
        ("file:///etc/passwd", "URL has no host"),
        ("data:text/html,hi", "URL has no host"),
        ("javascript:alert(1)", "URL has no host"),
    ] {
        let message = refusal(url).unwrap_or_else(|| panic!("{url:?} passed"));
        assert!(message.ends_with(why), "{url:?}: {message}");
    }
    let content =
        r#"{"links": [{"url": 7}, {"url": null}, {"url": ["https://example.com/"]}, {}]}"#;
    assert_eq!(
        found(content, &[RULE]),
        [
            f("host-not-allowed", "/links/0/url", 0, 0),
            f("host-not-allowed", "/links/2/url", 0, 0)
        ]
    );
}
