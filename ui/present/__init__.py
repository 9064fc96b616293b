"""What the class sees: every sentence, plotly figures, glossary cards, input components, browser scripts."""
