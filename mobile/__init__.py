"""The Kivy field client (screens, app state and services)."""
