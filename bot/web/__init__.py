"""The web app: health and metrics now; webhooks, the inbox and the console build on it."""
