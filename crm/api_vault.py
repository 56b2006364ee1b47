"""JSON API of the vault: an account's items (filters, cursor pages) and our labels and
suggested price per item. Scoped like every API: another account's item is a 404."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm import vault
from crm.api import _actor, _cursor_page, _params
from crm.serializers import (
    VaultItemPageSerializer,
    VaultItemSerializer,
    VaultItemUpdateSerializer,
    VaultListParamsSerializer,
    error_responses,
)


def _context(account_id: int) -> dict[str, Any]:
    return {"vault_url": reverse("vault_library", args=[account_id])}


class VaultItemListApi(APIView):
    @extend_schema(
        operation_id="crm_accounts_vault_list",
        summary="An account's vault items, newest first, one cursor page",
        description="Filters combine: ``q`` (part of a label or list name), ``type``, ``list`` "
        "(a vault list id), ``label``; items removed on the platform only with ``gone=true``; "
        "``sendable=true`` keeps items a message may carry now. Pass ``next_cursor`` back as "
        "``cursor`` with the same filters for the next page.",
        parameters=[VaultListParamsSerializer],
        responses={
            200: VaultItemPageSerializer,
            **error_responses({400: "validation_error, invalid_cursor", 404: "account_not_found"}),
        },
    )
    def get(self, request: Request, account_id: int) -> Response:
        data = _params(VaultListParamsSerializer, request.query_params)
        filters = vault.VaultFilters(
            q=" ".join(data["q"].split()),
            media_type=data["type"],
            list_id=data["list"],
            label=" ".join(data["label"].split()).lower(),
            include_gone=data["gone"],
            only_sendable=data["sendable"],
        )
        page = vault.vault_items_for_account(
            user=request.user,
            account_id=account_id,
            filters=filters,
            cursor=data["cursor"] or None,
            limit=data["limit"],
        )
        results = VaultItemSerializer(page.items, many=True, context=_context(account_id)).data
        return _cursor_page(request, results, page.next_cursor)


class VaultItemDetailApi(APIView):
    @extend_schema(
        operation_id="crm_accounts_vault_retrieve",
        summary="One vault item",
        responses={
            200: VaultItemSerializer,
            **error_responses({404: "account_not_found, vault_item_not_found"}),
        },
    )
    def get(self, request: Request, account_id: int, item_id: int) -> Response:
        item = vault.vault_item_get(user=request.user, account_id=account_id, item_id=item_id)
        return Response(VaultItemSerializer(item, context=_context(account_id)).data)

    @extend_schema(
        operation_id="crm_accounts_vault_update",
        summary="Set a vault item's labels and suggested price (owners and managers)",
        request=VaultItemUpdateSerializer,
        responses={
            200: VaultItemSerializer,
            **error_responses(
                {
                    400: "validation_error, invalid_labels, invalid_price",
                    403: "permission_denied (chatters)",
                    404: "account_not_found, vault_item_not_found",
                }
            ),
        },
    )
    def patch(self, request: Request, account_id: int, item_id: int) -> Response:
        data = _params(VaultItemUpdateSerializer, request.data)
        vault.vault_item_update(
            actor=_actor(request),
            account_id=account_id,
            item_id=item_id,
            labels=data.get("labels"),
            set_price="suggested_price_cents" in data,
            suggested_price_cents=data.get("suggested_price_cents"),
        )
        item = vault.vault_item_get(user=request.user, account_id=account_id, item_id=item_id)
        return Response(VaultItemSerializer(item, context=_context(account_id)).data)
