"""Three-tier statistics, weekly bulletins (周通报) and monthly assessments (月考评)."""
