-- rollup_purchases: dropped to be made again with each row's next purchase time (0104). The rollup's state then no longer matches its layout, and the next upkeep builds it anew (package metrics, rollup_views.go: layout).
DROP TABLE IF EXISTS rollup_purchases
