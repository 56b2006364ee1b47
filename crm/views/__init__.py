"""HTML pages. ``pages``: home, account switcher, fans, members, settings; ``inbox``: the
conversation view, its fragments and saved replies."""
