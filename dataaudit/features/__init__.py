"""Text features shared by checks and the reference fine-tune (answers, response formats)."""
