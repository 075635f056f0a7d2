# Constraints on arguments, checked before any tool runs.
package warden.authz

# Outbound fetches only to hosts on the allow-list in data.json.
deny contains sprintf("host %q is not on the fetch allow-list", [host]) if {
	input.target.name == "fetch.get"
	host := url_host(input.args.url)
	not host in data.fetch.allowed_hosts
}

# Defence in depth: the sandbox already confines the files plugin, but a path
# that tries to climb out says something about the caller.
deny contains sprintf("path %q climbs out of the data directory", [input.args.path]) if {
	input.target.plugin == "files"
	some part in split(input.args.path, "/")
	part == ".."
}

# The host part of an http(s) URL, without userinfo or port.
url_host(url) := host if {
	rest := trim_prefix(trim_prefix(url, "https://"), "http://")
	authority := split(rest, "/")[0]
	hostport := regex.replace(authority, "^.*@", "")
	host := lower(split(hostport, ":")[0])
}
