"""A stand-in for the platform gateway, speaking its contract over real HTTP.

Run it with ``python -m onlyfans.sandbox --port 8765``; tests use ``SandboxServer``.
"""
