from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from campaigns import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("", api.CampaignListApi.as_view(), name="api_campaign_list"),
    path("<int:campaign_id>", api.CampaignDetailApi.as_view(), name="api_campaign_detail"),
    path("<int:campaign_id>/launch", api.CampaignLaunchApi.as_view(), name="api_campaign_launch"),
    path("<int:campaign_id>/pause", api.CampaignPauseApi.as_view(), name="api_campaign_pause"),
    path("<int:campaign_id>/resume", api.CampaignResumeApi.as_view(), name="api_campaign_resume"),
    path("<int:campaign_id>/cancel", api.CampaignCancelApi.as_view(), name="api_campaign_cancel"),
    path("<int:campaign_id>/unsend", api.CampaignUnsendApi.as_view(), name="api_campaign_unsend"),
]
