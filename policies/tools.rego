# Role-based tool access. `data.roles` (data.json) maps each role to glob
# patterns over qualified tool names (`plugin.tool`).
package warden.authz

allow if {
	input.target.kind == "tool"
	some role in input.principal.roles
	some pattern in data.roles[role].tools
	glob.match(pattern, ["."], input.target.name)
}

deny contains sprintf("principal %q has no roles", [input.principal.id]) if {
	count(input.principal.roles) == 0
}
