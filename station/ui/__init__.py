"""The operator screen: a local, kiosk-style web interface for the identification desk."""
