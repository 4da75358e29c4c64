from django.urls import path

from . import views

urlpatterns = [
    path("", views.statement, name="billing_statement"),
    path("checkout/<slug:item>/", views.checkout, name="billing_checkout"),
    path("portal/", views.portal, name="billing_portal"),
]
