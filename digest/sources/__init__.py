"""Where posts come from: a Jekyll folder, a Hugo site, or an RSS/Atom/JSON feed.

Each source reads into the same `Post` values (digest.posts); selection does not know which.
"""
