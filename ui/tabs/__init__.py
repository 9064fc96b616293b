"""The studio's tabs, one module each; none imports another. app.py lays them out."""
