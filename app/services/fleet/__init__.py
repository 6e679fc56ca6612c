"""What does the work: workers' heartbeats and capacity, task and queue statistics, the model
services' circuit breakers, and the system's health."""
