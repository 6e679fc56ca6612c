"""LLM calls: the priority semaphore shared by every worker, the LLM queue's figures and
controls, and pricing."""
