"""AI agents in GraphQL: the agents connection, one agent, and the controls."""

from app.gql.agents.schema import AgentMutations, AgentQueries

__all__ = ["AgentMutations", "AgentQueries"]
