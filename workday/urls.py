from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from workday import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("overview/", views.overview, name="workday_overview"),
    path("review/", views.review_feed, name="workday_review"),
    path("review/messages/<int:message_id>/mark/", views.review_mark, name="workday_review_mark"),
    path("review/mine/", views.my_reviews, name="workday_my_reviews"),
    path("review/mine/seen/", views.my_reviews_seen, name="workday_my_reviews_seen"),
    path("review/mine/count/", views.my_reviews_count, name="workday_my_reviews_count"),
    path(
        "accounts/<int:account_id>/review-settings/",
        views.review_settings,
        name="workday_review_settings",
    ),
    path("payroll/", views.payroll_page, name="workday_payroll_all"),
    path("payroll.csv", views.payroll_csv, name="workday_payroll_all_csv"),
    path("accounts/<int:account_id>/payroll/", views.payroll_page, name="workday_payroll"),
    path("accounts/<int:account_id>/payroll.csv", views.payroll_csv, name="workday_payroll_csv"),
    path(
        "accounts/<int:account_id>/payroll/rules/<int:user_id>/",
        views.pay_rule_update,
        name="workday_pay_rule",
    ),
]
