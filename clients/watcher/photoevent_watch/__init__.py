"""photoevent-watch: uploads new photos from a folder to a photoevent event, over HTTP only."""

__version__ = "1.0.0"
