"""Seed 002's AI audit over REST (/api/ai-audit): prompt configurations and tests
(prompts.py), and the audit of the pipeline's decisions (reports.py)."""

from app.rest.ai_audit import prompts, reports

# prompts first: /prompts/history and /prompts/export before /prompts/{model}
routers = [prompts.router, reports.router]
