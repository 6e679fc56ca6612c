"""The AI audit (seed 002): every AI decision of the camera pipeline recorded, events
self-evaluated by an LLM judge, and the reports built on both."""
