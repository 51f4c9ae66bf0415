"""Identity and access: principals, roles, bindings, credentials and policy decisions."""
