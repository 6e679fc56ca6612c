"""Seed 002's AI audit in GraphQL: prompt configurations and the audit of the pipeline's
decisions."""

from app.gql.ai_audit.prompts import PromptMutations, PromptQueries
from app.gql.ai_audit.reports import AuditMutations, AuditQueries

__all__ = ["AuditMutations", "AuditQueries", "PromptMutations", "PromptQueries"]
