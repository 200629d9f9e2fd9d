-- state_put: a new version of one rollup's state (package metrics, after a build or an upkeep).
INSERT INTO rollups (name, metric, spec, status, watermark, generation, as_of, error, updated_at)
VALUES ({name:String}, {metric:String}, {spec:String}, {status:String}, {watermark:String}, {generation:UInt64},
        {as_of:DateTime64(3, 'UTC')}, {error:String}, now64(6))
