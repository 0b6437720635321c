"""The local side: the functions tree as files (`tree`) and as modules (`imports`)."""
