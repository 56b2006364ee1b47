from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from workday import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("review", api.ReviewFeedApi.as_view(), name="api_workday_review"),
    path(
        "review/<int:message_id>/mark", api.ReviewMarkApi.as_view(), name="api_workday_review_mark"
    ),
    path("reviews/mine", api.MyReviewsApi.as_view(), name="api_workday_my_reviews"),
    path("payroll", api.PayrollApi.as_view(), name="api_workday_payroll"),
    path("overview", api.OverviewApi.as_view(), name="api_workday_overview"),
]
