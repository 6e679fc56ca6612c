"""Authentication and authorization: principals, roles and scopes (principals), signed tokens
(tokens), API keys (api_keys), and resolving a request's credentials (credentials)."""
