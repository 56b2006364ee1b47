"""The workday API: the review feed and marks, a member's own marks, per-member and
per-shift pay figures, the agency overview. Same scoping as the pages: another account is a
404 ``account_not_found``; a chatter asking for a manager's view gets 403."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.serializers import error_responses
from workday import selectors, services
from workday.serializers import (
    MyReviewPageSerializer,
    OverviewTileSerializer,
    PayrollParamsSerializer,
    PayrollSerializer,
    ReviewMarkOutSerializer,
    ReviewMarkSerializer,
    ReviewPageSerializer,
    ReviewParamsSerializer,
)

DATE_PARAMS = [
    OpenApiParameter("from", str, description="First day, ISO date (inclusive)."),
    OpenApiParameter("to", str, description="Last day, ISO date (inclusive)."),
]


def _item(item: selectors.ReviewItem) -> dict[str, Any]:
    row = item.row
    return {
        "message_id": row.message_id,
        "account_id": row.account_id,
        "conversation_id": row.conversation_id,
        "sent_by_id": row.sent_by_id,
        "sender": row.sender_name,
        "sender_kind": row.sender_kind,
        "text": row.text,
        "price_cents": row.price_cents,
        "status": row.status,
        "created_at": row.created_at,
        "fan": {
            "id": row.fan_id,
            "name": item.fan_name,
            "lifetime_spend_cents": row.fan_spend_cents,
        },
        "reply_seconds": row.reply_seconds,
        "repeated_fans": row.repeated_fans,
        "flags": item.flags,
        "mark": {
            "verdict": row.verdict,
            "comment": row.comment or "",
            "reviewed_by": row.reviewed_by,
            "reviewed_at": row.reviewed_at,
        }
        if row.verdict
        else None,
    }


class ReviewFeedApi(APIView):
    @extend_schema(
        summary="The review feed: outgoing messages of the accounts the caller manages",
        description="Newest first, 50 a page (keyset: pass `next_cursor` back as `cursor`). "
        "Each row has the fan's lifetime spend, the reply time, the repeated-text count, "
        "its flags and its mark.",
        parameters=[ReviewParamsSerializer],
        responses={
            200: ReviewPageSerializer,
            **error_responses(
                {
                    400: "validation_error, invalid_cursor",
                    403: "permission_denied",
                    404: "account_not_found",
                }
            ),
        },
    )
    def get(self, request: Request) -> Response:
        params = ReviewParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        page = selectors.review_feed_page(
            user=request.user,
            filters=selectors.ReviewFilters(
                account_id=data.get("account"),
                chatter_id=data.get("chatter"),
                price=data.get("price", ""),
                first_day=data.get("from"),
                last_day=data.get("to"),
                flag=data.get("flag", ""),
            ),
            cursor=data.get("cursor", ""),
        )
        body = {"results": [_item(i) for i in page.items], "next_cursor": page.next_cursor}
        return Response(ReviewPageSerializer(body).data)


class ReviewMarkApi(APIView):
    @extend_schema(
        summary="Mark a message good or needs work, with a comment its sender sees",
        request=ReviewMarkSerializer,
        responses={
            200: ReviewMarkOutSerializer,
            **error_responses(
                {
                    400: "validation_error, invalid_review",
                    403: "permission_denied",
                    404: "message_not_found",
                    409: "not_reviewable",
                }
            ),
        },
    )
    def post(self, request: Request, message_id: int) -> Response:
        body = ReviewMarkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        review = services.message_review_mark(
            actor=request.user,
            message_id=message_id,
            verdict=body.validated_data["verdict"],
            comment=body.validated_data["comment"],
        )
        out = {
            "verdict": review.verdict,
            "comment": review.comment,
            "reviewed_by": request.user.get_username(),
            "reviewed_at": review.reviewed_at,
        }
        return Response(ReviewMarkOutSerializer(out).data)


class MyReviewsApi(APIView):
    @extend_schema(
        summary="Marks on the caller's own messages, newest first",
        parameters=[OpenApiParameter("cursor", str, description="`next_cursor` of a page.")],
        responses={200: MyReviewPageSerializer, **error_responses({400: "invalid_cursor"})},
    )
    def get(self, request: Request) -> Response:
        page = selectors.my_reviews_page(
            user=request.user, cursor=str(request.query_params.get("cursor", ""))[:40]
        )
        results = [
            {
                "id": r.pk,
                "message_id": r.message_id,
                "account_id": r.account_id,
                "text": r.message.text,
                "price_cents": r.message.price_cents,
                "verdict": r.verdict,
                "comment": r.comment,
                "reviewed_by": r.reviewed_by.get_username() if r.reviewed_by else None,
                "reviewed_at": r.reviewed_at,
                "seen": r.seen_at is not None,
            }
            for r in page.reviews
        ]
        body = {"results": results, "next_cursor": page.next_cursor}
        return Response(MyReviewPageSerializer(body).data)


class PayrollApi(APIView):
    @extend_schema(
        summary="Payroll figures per member, with each work session's share",
        description="Worked hours (work sessions clipped to the period), messages, fans "
        "answered, median response, PPV sent and unlocked, credited revenue (the analytics "
        "page's attribution) and pay by the member's rule. Days in the account's time zone.",
        parameters=[PayrollParamsSerializer],
        responses={
            200: PayrollSerializer,
            **error_responses(
                {400: "validation_error", 403: "permission_denied", 404: "account_not_found"}
            ),
        },
    )
    def get(self, request: Request) -> Response:
        params = PayrollParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        if data.get("account"):
            payroll = selectors.payroll_for_account(
                user=request.user,
                account_id=data["account"],
                first_day=data["from"],
                last_day=data["to"],
            )
        else:
            payroll = selectors.payroll_for_owner(
                user=request.user, first_day=data["from"], last_day=data["to"]
            )
        return Response(PayrollSerializer(payroll).data)


class OverviewApi(APIView):
    @extend_schema(
        summary="The agency overview: every account the caller owns or manages, live",
        responses={
            200: OverviewTileSerializer(many=True),
            **error_responses({403: "permission_denied"}),
        },
    )
    def get(self, request: Request) -> Response:
        tiles = selectors.overview_tiles(user=request.user)
        return Response(OverviewTileSerializer(tiles, many=True).data)
