"""The API contract: every request and response schema, by what it describes."""
from .admin import (
    ActivationSchema, JobSchema, ModelListSchema, ModelUploadSchema,
    TrainRequestSchema, UploadSchema, VersionSchema,
)
from .explain import (
    ComparableSchema, EffectSchema, EstimateQuerySchema, ExplanationSchema,
    NeighbourSchema,
)
from .fields import MIN_YEAR, openapi_property
from .homes import BatchSchema, HomeSchema, MinimalHomeSchema
from .keys import (
    KeyCreatedSchema, KeyCreateSchema, KeyListSchema, KeyRotatedSchema,
    KeyRotateSchema, KeySchema, UsageQuerySchema, UsageSchema,
)
from .rollouts import (
    RolloutRequestSchema, RolloutSchema, RolloutShareSchema, RolloutStartedSchema,
    RolloutStatusSchema,
)
from .monitoring import (
    BinSchema, DriftQuerySchema, DriftSchema, FeatureDriftSchema,
    LiveFiguresSchema, PerformanceQuerySchema, PerformanceSchema,
    SalesReceiptSchema, SaleSchema, SalesSchema,
)
from .responses import (
    BatchPredictionSchema, EstimateSchema, FeaturesSchema, FieldSpecSchema,
    HealthSchema, IntervalSchema, ModelInfoSchema, ModelRefSchema,
    PredictionSchema, ZipcodesSchema,
)

__all__ = [
    "RolloutRequestSchema", "RolloutSchema", "RolloutShareSchema",
    "RolloutStartedSchema", "RolloutStatusSchema",
    "ActivationSchema", "BinSchema", "ComparableSchema", "DriftQuerySchema",
    "DriftSchema", "EffectSchema", "EstimateQuerySchema", "ExplanationSchema",
    "FeatureDriftSchema", "BatchPredictionSchema", "BatchSchema", "EstimateSchema",
    "FeaturesSchema", "FieldSpecSchema", "HealthSchema", "HomeSchema",
    "IntervalSchema", "JobSchema", "KeyCreateSchema", "KeyCreatedSchema",
    "KeyListSchema", "KeyRotateSchema", "KeyRotatedSchema", "KeySchema",
    "LiveFiguresSchema", "MIN_YEAR", "MinimalHomeSchema", "NeighbourSchema",
    "PerformanceQuerySchema", "PerformanceSchema",
    "SaleSchema", "SalesReceiptSchema", "SalesSchema",
    "ModelInfoSchema", "ModelListSchema", "ModelRefSchema", "ModelUploadSchema",
    "PredictionSchema", "TrainRequestSchema", "UploadSchema", "VersionSchema",
    "UsageQuerySchema", "UsageSchema", "ZipcodesSchema", "openapi_property",
]
