"""Writing to disk: adapter packs, the one atomic write, and the test-only
fault points."""
