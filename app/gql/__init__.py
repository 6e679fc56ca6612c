"""The GraphQL API: Strawberry types, resolvers, subscriptions, loaders and permissions."""
