"""The pure conversation core of Stifinder.

Nothing in this package does I/O or imports a framework, the database layer or the runtime:
it holds the vocabulary (``types``) and the text rules (``privacy``) that every other layer
shares.
"""
