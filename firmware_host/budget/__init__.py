"""The ISS budgets: power (admission, shedding, timeline, sequencing), media, downlink."""
