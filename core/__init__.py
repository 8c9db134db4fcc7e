"""What every app shares and that knows no app: the error family and text checks."""
