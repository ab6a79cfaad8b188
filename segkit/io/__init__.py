"""Reading inputs (images, URLs) and writing outputs (PNG, zip, backgrounds)."""
