"""JSON API for creator accounts and fans; every read is scoped to the caller's memberships."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm import selectors
from crm.models import Fan, Membership
from crm.serializers import AccountSerializer, FanListParamsSerializer, FanSerializer


class AccountListApi(ListAPIView):
    serializer_class = AccountSerializer

    def get_queryset(self) -> QuerySet[Membership]:
        return selectors.memberships_for_user(user=self.request.user).order_by(
            "account__display_name", "account_id"
        )


class FanListApi(ListAPIView):
    """``?account=<id>`` (required), ``q``, ``tag``, ``subscription_state``, ``sort``."""

    serializer_class = FanSerializer

    def get_queryset(self) -> QuerySet[Fan]:
        params = FanListParamsSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        return selectors.fans_for_account(
            user=self.request.user,
            account_id=data["account"],
            query=data["q"],
            tag=data["tag"],
            subscription_state=data["subscription_state"],
            sort=data["sort"],
        )


class FanDetailApi(APIView):
    def get(self, request: Request, fan_id: int) -> Response:
        fan = selectors.fan_get(user=request.user, fan_id=fan_id)
        return Response(FanSerializer(fan).data)
