"""The Stifinder runtime: web app, worker, CLI and the composition root that wires them."""
