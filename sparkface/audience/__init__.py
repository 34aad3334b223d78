"""Audiences: who stood in front of each screen, and when; counts and corrected shares only."""
