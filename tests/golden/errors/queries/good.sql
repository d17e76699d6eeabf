INSERT INTO totals
SELECT artist, count(*) FROM plays
WHERE day >= :interval.start AND day < :interval.end
GROUP BY artist
