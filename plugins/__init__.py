"""Paved's built-in plugins: each is found through the ``paved.plugins`` entry points and
wired in through hooks, exactly as a third-party plugin is."""
