"""The database side of the answer cache: versions bumps that Redis could not take yet."""
