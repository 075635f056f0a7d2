# Constraints on arguments, checked before any tool runs.
package warden.authz

# Outbound fetches only to hosts on the allow-list in data.json. The URL is
# read by `warden.parse_url`, the host's own URL parser (the one egress uses):
# the host checked here is the host the sandbox connects to, whatever
# `#@`, `?@`, `\@`, userinfo, case, trailing dot or IP spelling the URL uses.
deny contains sprintf("host %q is not on the fetch allow-list", [fetch_url.host]) if {
	# The guard first: other calls never evaluate `fetch_url`.
	input.target.name == "fetch.get"
	fetch_url != null
	not fetch_url.host in data.fetch.allowed_hosts
}

deny contains sprintf("url %q is not an http or https URL", [input.args.url]) if {
	input.target.name == "fetch.get"
	not fetch_url.scheme in {"http", "https"}
}

# The URL of a fetch, parsed once per decision.
fetch_url := warden.parse_url(input.args.url) if input.target.name == "fetch.get"

# Defence in depth: the sandbox already confines the files plugin, but a path
# that tries to climb out says something about the caller.
deny contains sprintf("path %q climbs out of the data directory", [input.args.path]) if {
	input.target.plugin == "files"
	some part in split(input.args.path, "/")
	part == ".."
}
