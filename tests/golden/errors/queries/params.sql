INSERT INTO totals
SELECT artist, count(*) FROM plays
WHERE day >= :interval.start AND day < :intervl.end
GROUP BY artist
