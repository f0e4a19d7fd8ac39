"""What a person sees: terminal rendering, saved results, the HTML report."""
