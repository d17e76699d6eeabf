-- The monthly totals, with a typo in the second clause.
INSERT INTO totals
SELECT artist, count(*)
FORM plays
WHERE day >= :interval.start
