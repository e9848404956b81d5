"""The marker colours the fake face backend reads as people; no Django, so bench/ uses it too."""

MARKERS = [
    (220, 20, 60),
    (30, 144, 255),
    (50, 205, 50),
    (255, 140, 0),
    (148, 0, 211),
    (0, 206, 209),
    (255, 20, 147),
    (139, 69, 19),
]
