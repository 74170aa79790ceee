"""The CyberSource plugin: the exact SOAP and query requests it builds, and how it reads answers (pure).

Where each recorded answer comes from (bodies kept verbatim, only re-indented where noted):
- AM = Active Merchant, test/unit/gateways/cyber_source_test.rb (the file gateways.md section 2
  names): successful_purchase_response, unsuccessful_authorization_response,
  unsuccessful_authorization_response_with_reply, authorization_review_response,
  missing_field_response, invalid_field_response, cvv_mismatch_response, successful_refund_response,
  successful_void_response, malformed_xml_response, invalid_xml_response, and the reply inside its
  post_scrubbed transcript (a live test-server answer, transaction-data-1.109).
- KB = Kill Bill's CyberSource plugin (killbill/killbill-cybersource-plugin):
  spec/cybersource/base_plugin_spec.rb (bad_password_response, password_expired_response: SOAP
  faults) and spec/cybersource/cyber_source_on_demand_spec.rb (two Transaction Detail reports of
  the On-Demand Single Transaction Query).
- CyberSource's own Magento plugin, ECheck HTTPClientTest (a Transaction Detail report, tdr 1.5).
- No public sample of a 151 reply exists (gateways.md section 8); the one below is Active Merchant's
  successful_purchase_response with decision ERROR and reasonCode 151, the shape CyberSource's
  reason-code page gives it.
"""

import base64
import xml.etree.ElementTree as ET
from datetime import datetime
from urllib.parse import parse_qs

import pytest
import time_machine

from portal.gateways.base import CallNotMade, GatewayConfig, GatewayRequest, Settlement
from portal.gateways.registry import plugin
from portal.money import Money
from portal.statuses import GatewayStatus

S = GatewayStatus
SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"
WSSE = "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}"
CYBS = "{urn:schemas-cybersource-com:transaction-data-1.201}"
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
KEY = "0123456789abcdef0123456789abcdef"
CREDENTIALS = {
    "merchant_id": "acme_corp",
    "transaction_key": "tk_SECRET_value",
    "report_username": "acme_reports",
    "report_password": "rp_SECRET_value",
}

# Recorded answers ---------------------------------------------------------------------------------

_HEADER = (
    '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">\n'
    "<soap:Header>\n"
    '<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">'
    '<wsu:Timestamp xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" wsu:Id="Timestamp-{ts}">'
    "<wsu:Created>{created}</wsu:Created></wsu:Timestamp></wsse:Security></soap:Header><soap:Body>"
)  # fmt: skip


def _am(ts: str, created: str, body: str) -> str:
    """Active Merchant's fixtures share one SOAP header; each differs in the Body."""
    return _HEADER.format(ts=ts, created=created) + body + "</soap:Body></soap:Envelope>\n"


# AM successful_purchase_response
AM_PURCHASE = _am("2636690", "2008-01-15T21:42:03.343Z", '<c:replyMessage xmlns:c="urn:schemas-cybersource-com:transaction-data-1.26"><c:merchantReferenceCode>b0a6cf9aa07f1a8495f89c364bbd6a9a</c:merchantReferenceCode><c:requestID>2004333231260008401927</c:requestID><c:decision>ACCEPT</c:decision><c:reasonCode>100</c:reasonCode><c:requestToken>Afvvj7Ke2Fmsbq0wHFE2sM6R4GAptYZ0jwPSA+R9PhkyhFTb0KRjoE4+ynthZrG6tMBwjAtT</c:requestToken><c:purchaseTotals><c:currency>USD</c:currency></c:purchaseTotals><c:ccAuthReply><c:reasonCode>100</c:reasonCode><c:amount>1.00</c:amount><c:authorizationCode>123456</c:authorizationCode><c:avsCode>Y</c:avsCode><c:avsCodeRaw>Y</c:avsCodeRaw><c:cvCode>M</c:cvCode><c:cvCodeRaw>M</c:cvCodeRaw><c:authorizedDateTime>2008-01-15T21:42:03Z</c:authorizedDateTime><c:processorResponse>00</c:processorResponse><c:authFactorCode>U</c:authFactorCode></c:ccAuthReply></c:replyMessage>')  # fmt: skip
# AM unsuccessful_authorization_response
AM_INVALID_ACCOUNT = _am("28121162", "2008-01-15T21:50:41.580Z", '<c:replyMessage xmlns:c="urn:schemas-cybersource-com:transaction-data-1.26"><c:merchantReferenceCode>a1efca956703a2a5037178a8a28f7357</c:merchantReferenceCode><c:requestID>2004338415330008402434</c:requestID><c:decision>REJECT</c:decision><c:reasonCode>231</c:reasonCode><c:requestToken>Afvvj7KfIgU12gooCFE2/DanQIApt+G1OgTSA+R9PTnyhFTb0KRjgFY+ynyIFNdoKKAghwgx</c:requestToken><c:ccAuthReply><c:reasonCode>231</c:reasonCode></c:ccAuthReply></c:replyMessage>')  # fmt: skip
# AM authorization_review_response
AM_REVIEW = _am("32551101", "2007-07-12T18:31:53.838Z", '<c:replyMessage xmlns:c="urn:schemas-cybersource-com:transaction-data-1.26"><c:merchantReferenceCode>TEST11111111111</c:merchantReferenceCode><c:requestID>1842651133440156177166</c:requestID><c:decision>REVIEW</c:decision><c:reasonCode>480</c:reasonCode><c:requestToken>AP4JY+Or4xRonEAOERAyMzQzOTEzMEM0MFZaNUZCBgDH3fgJ8AEGAMfd+AnwAwzRpAAA7RT/</c:requestToken><c:purchaseTotals><c:currency>USD</c:currency></c:purchaseTotals><c:ccAuthReply><c:reasonCode>100</c:reasonCode><c:amount>1.00</c:amount><c:authorizationCode>004542</c:authorizationCode><c:avsCode>A</c:avsCode><c:avsCodeRaw>I7</c:avsCodeRaw><c:authorizedDateTime>2007-07-12T18:31:53Z</c:authorizedDateTime><c:processorResponse>100</c:processorResponse><c:reconciliationID>23439130C40VZ2FB</c:reconciliationID></c:ccAuthReply></c:replyMessage>')  # fmt: skip
# AM missing_field_response
AM_MISSING_FIELD = _am("2122229692", "2019-09-05T01:02:20.132Z", '<c:replyMessage xmlns:c="urn:schemas-cybersource-com:transaction-data-1.155"><c:merchantReferenceCode>9y2A7XGxMSOUqppiEXkiN8T38Jj</c:merchantReferenceCode><c:requestID>5676453399086696204061</c:requestID><c:decision>REJECT</c:decision><c:reasonCode>101</c:reasonCode><c:missingField>c:billTo/c:country</c:missingField><c:requestToken>Ahjz7wSTM7ido1SNM4cdGwFRfPELvH+kE/QkEg+jLpJlXR6RuUgJMmZ3E7RqkaZw46AAniPV</c:requestToken><c:ccAuthReply><c:reasonCode>101</c:reasonCode></c:ccAuthReply></c:replyMessage>')  # fmt: skip
# AM invalid_field_response (no merchantReferenceCode in it, as recorded)
AM_INVALID_FIELD = _am("1918753692", "2019-09-05T14:10:46.665Z", '<c:replyMessage xmlns:c="urn:schemas-cybersource-com:transaction-data-1.155"><c:requestID>5676926465076767004068</c:requestID><c:decision>REJECT</c:decision><c:reasonCode>102</c:reasonCode><c:invalidField>c:billTo/c:postalCode</c:invalidField><c:requestToken>AhjzbwSTM78uTleCsJWkEAJRqivRidukDssiQgRm0ky3SA7oegDUiwLm</c:requestToken></c:replyMessage>')  # fmt: skip
# AM cvv_mismatch_response
AM_CVV_MISMATCH = _am("1918753692", "2019-09-05T14:10:46.665Z", '<c:replyMessage xmlns:c="urn:schemas-cybersource-com:transaction-data-1.155"><c:requestID>5676926465076767004068</c:requestID><c:decision>REJECT</c:decision><c:reasonCode>230</c:reasonCode><c:invalidField>c:billTo/c:postalCode</c:invalidField><c:requestToken>AhjzbwSTM78uTleCsJWkEAJRqivRidukDssiQgRm0ky3SA7oegDUiwLm</c:requestToken></c:replyMessage>')  # fmt: skip
# AM successful_refund_response
AM_REFUND = _am("5589339", "2008-01-21T16:00:38.927Z", '<c:replyMessage xmlns:c="urn:schemas-cybersource-com:transaction-data-1.32"><c:merchantReferenceCode>TEST11111111111</c:merchantReferenceCode><c:requestID>2009312387810008401927</c:requestID><c:decision>ACCEPT</c:decision><c:reasonCode>100</c:reasonCode><c:requestToken>Af/vj7OzPmut/eogHFCrBiwYsWTJy1r127CpCn0KdOgyTZnzKwVYCmzPmVgr9ID5H1WGTSTKuj0i30IE4+zsz2d/QNzwBwAACCPA</c:requestToken><c:purchaseTotals><c:currency>USD</c:currency></c:purchaseTotals><c:ccCreditReply><c:reasonCode>100</c:reasonCode><c:requestDateTime>2008-01-21T16:00:38Z</c:requestDateTime><c:amount>1.00</c:amount><c:reconciliationID>010112295WW70TBOPSSP2</c:reconciliationID></c:ccCreditReply></c:replyMessage>')  # fmt: skip
# AM successful_void_response
AM_VOID = _am("753384332", "2016-07-25T20:50:50.583Z", '<c:replyMessage xmlns:c="urn:schemas-cybersource-com:transaction-data-1.121"><c:merchantReferenceCode>bb3b1bb530192c9dd20f121686c91c40</c:merchantReferenceCode><c:requestID>4694798504476543904007</c:requestID><c:decision>ACCEPT</c:decision><c:reasonCode>100</c:reasonCode><c:requestToken>Ahj//wSR/QLVu2z/GtIOIkG7Nm4bNW7KPRrRY0mvYS4YB0I7QFLgkgkAA0gAwfwyaSZbpAdvSeeBOR/QLVqII/qE+QAA3yVt</c:requestToken><c:purchaseTotals><c:currency>USD</c:currency></c:purchaseTotals><c:voidReply><c:reasonCode>100</c:reasonCode><c:requestDateTime>2016-07-25T20:50:50Z</c:requestDateTime><c:amount>1.00</c:amount><c:currency>usd</c:currency></c:voidReply></c:replyMessage>')  # fmt: skip
# AM malformed_xml_response: an unclosed <p> inside ccAuthReply
AM_MALFORMED = _am("2636690", "2008-01-15T21:42:03.343Z", '<c:replyMessage xmlns:c="urn:schemas-cybersource-com:transaction-data-1.26"><c:merchantReferenceCode>b0a6cf9aa07f1a8495f89c364bbd6a9a</c:merchantReferenceCode><c:requestID>2004333231260008401927</c:requestID><c:decision>ACCEPT</c:decision><c:reasonCode>100</c:reasonCode><c:requestToken>Afvvj7Ke2Fmsbq0wHFE2sM6R4GAptYZ0jwPSA+R9PhkyhFTb0KRjoE4+ynthZrG6tMBwjAtT</c:requestToken><c:purchaseTotals><c:currency>USD</c:currency></c:purchaseTotals><c:ccAuthReply><c:reasonCode>100</c:reasonCode><c:amount>1.00</c:amount><c:authorizationCode>123456</c:authorizationCode><c:avsCode>Y</c:avsCode><c:avsCodeRaw>Y</c:avsCodeRaw><c:cvCode>M</c:cvCode><c:cvCodeRaw>M</c:cvCodeRaw><c:authorizedDateTime>2008-01-15T21:42:03Z</c:authorizedDateTime><c:processorResponse>00</c:processorResponse><c:authFactorCode>U</c:authFactorCode><p></c:ccAuthReply></c:replyMessage>')  # fmt: skip
# AM invalid_xml_response
AM_INVALID_XML = "What's all this then, govna?</p>"

# AM unsuccessful_authorization_response_with_reply: multi-line, and the issuer approved
# (ccAuthReply 100) before Decision Manager rejected it (top-level 481, which decides).
AM_DECISION_MANAGER_REJECT = """\
      <?xml version="1.0" encoding="utf-8"?>
      <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
        <soap:Header>
        <wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">
          <wsu:Timestamp xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" wsu:Id="Timestamp-5307043">
            <wsu:Created>2017-05-10T01:15:14.835Z</wsu:Created>
          </wsu:Timestamp></wsse:Security>
        </soap:Header>
        <soap:Body>
          <c:replyMessage xmlns:c="urn:schemas-cybersource-com:transaction-data-1.121">
            <c:merchantReferenceCode>TEST11111111111</c:merchantReferenceCode>
            <c:requestID>1841784762620176127166</c:requestID>
            <c:decision>REJECT</c:decision>
            <c:reasonCode>481</c:reasonCode>
            <c:requestToken>AMYJY9fl62i+vx2OEQYAx9zv/9UBZAAA5h5D</c:requestToken>
            <c:purchaseTotals>
              <c:currency>USD</c:currency>
            </c:purchaseTotals>
            <c:ccAuthReply>
              <c:reasonCode>100</c:reasonCode>
              <c:amount>1186.43</c:amount>
              <c:authorizationCode>123456</c:authorizationCode>
              <c:avsCode>N</c:avsCode>
              <c:avsCodeRaw>N</c:avsCodeRaw>
              <c:cvCode>M</c:cvCode>
              <c:cvCodeRaw>M</c:cvCodeRaw>
              <c:authorizedDateTime>2017-05-10T01:15:14Z</c:authorizedDateTime>
              <c:processorResponse>00</c:processorResponse>
              <c:reconciliationID>013445773WW7EWMB0RYI9</c:reconciliationID>
            </c:ccAuthReply>
            <c:decisionReply><c:casePriority>3</c:casePriority><c:activeProfileReply/></c:decisionReply>
          </c:replyMessage>
        </soap:Body>
      </soap:Envelope>
"""  # (afsReply of the recorded body left out)

# The reply inside AM's post_scrubbed transcript: a live ics2wstest answer to a sale.
AM_LIVE_SALE = '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">\n<soap:Header>\n<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><wsu:Timestamp xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" wsu:Id="Timestamp-513448318"><wsu:Created>2015-06-05T13:01:57.974Z</wsu:Created></wsu:Timestamp></wsse:Security></soap:Header><soap:Body><c:replyMessage xmlns:c="urn:schemas-cybersource-com:transaction-data-1.109"><c:merchantReferenceCode>734dda9bb6446f2f2638ab7faf34682f</c:merchantReferenceCode><c:requestID>4335093172165000001515</c:requestID><c:decision>ACCEPT</c:decision><c:reasonCode>100</c:reasonCode><c:requestToken>Ahj//wSR1gMBn41YRu/WIkGLlo3asGzCbBky4VOjHT9/xXHSYBT9/xXHSbSA+RQkhk0ky3SA3+mwMCcjrAYDPxqwjd+sKWXL</c:requestToken><c:purchaseTotals><c:currency>USD</c:currency></c:purchaseTotals><c:ccAuthReply><c:reasonCode>100</c:reasonCode><c:amount>1.00</c:amount><c:authorizationCode>888888</c:authorizationCode><c:avsCode>X</c:avsCode><c:avsCodeRaw>I1</c:avsCodeRaw><c:cvCode/><c:authorizedDateTime>2015-06-05T13:01:57Z</c:authorizedDateTime><c:processorResponse>100</c:processorResponse><c:reconciliationID>19475060MAIKBSQG</c:reconciliationID></c:ccAuthReply><c:ccCaptureReply><c:reasonCode>100</c:reasonCode><c:requestDateTime>2015-06-05T13:01:57Z</c:requestDateTime><c:amount>1.00</c:amount><c:reconciliationID>19475060MAIKBSQG</c:reconciliationID></c:ccCaptureReply></c:replyMessage></soap:Body></soap:Envelope>'  # fmt: skip

_KB_FAULT = '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">\n<soap:Header>\n<wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><wsu:Timestamp xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" wsu:Id="Timestamp-2636690"><wsu:Created>2008-01-15T21:42:03.343Z</wsu:Created></wsu:Timestamp></wsse:Security></soap:Header><soap:Body><soap:Fault xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:c="urn:schemas-cybersource-com:transaction-data-1.0"><faultcode>wsse:FailedCheck</faultcode><faultstring>{}</faultstring></soap:Fault></soap:Body></soap:Envelope>\n'  # fmt: skip
# KB bad_password_response and password_expired_response
KB_BAD_PASSWORD = _KB_FAULT.format("Security Data : UsernameToken authentication failed.")
KB_PASSWORD_EXPIRED = _KB_FAULT.format("Security Data : Merchant password has expired.")

# KB cyber_source_on_demand_spec.rb, first report: a capture that went to the processor.
KB_REPORT_CAPTURE = """\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE Report SYSTEM "https://ebctest.cybersource.com/ebctest/reports/dtd/tdr_1_3.dtd">
<Report xmlns="https://ebctest.cybersource.com/ebctest/reports/dtd/tdr_1_3.dtd"
        Name="Transaction Detail"
        Version="1.3"
        MerchantID="testMerchant"
        ReportStartDate="2008-09-10 21:46:41.765-08:00"
        ReportEndDate="2008-09-10 21:46:41.765-08:00">
  <Requests>
    <Request MerchantReferenceNumber="33038191"
             RequestDate="2008-09-10T14:00:08-08:00"
             RequestID="2210804330010167904567"
             SubscriptionID=""
             Source="SCMP API"
             User="merchant123"
             TransactionReferenceNumber="0001094522"
             PredecessorRequestID="7904567221330010160804">
      <BillTo>
        <FirstName>JANE</FirstName>
        <LastName>Smith</LastName>
        <Address1>1295 Charleston Rd</Address1>
        <Address2>Suite 2</Address2>
        <City>Mountain View</City>
        <State>CA</State>
        <Zip>06513</Zip>
        <Email>null@cybersource.com</Email>
        <Country>US</Country>
      </BillTo>
      <PaymentMethod>
        <Card>
          <AccountSuffix>1111</AccountSuffix>
          <ExpirationMonth>11</ExpirationMonth>
          <ExpirationYear>2011</ExpirationYear>
          <CardType>Visa</CardType>
        </Card>
      </PaymentMethod>
      <ApplicationReplies>
        <ApplicationReply Name="ics_bill">
          <RCode>1</RCode>
          <RFlag>SOK</RFlag>
          <RMsg>Request was processed successfully.</RMsg>
        </ApplicationReply>
      </ApplicationReplies>
      <PaymentData>
        <PaymentProcessor>vital</PaymentProcessor>
        <Amount>1.81</Amount>
        <CurrencyCode>eur</CurrencyCode>
        <TotalTaxAmount>0.25</TotalTaxAmount>
        <EventType>TRANSMITTED</EventType>
      </PaymentData>
    </Request>
  </Requests>
</Report>
"""  # (ShipTo and LineItems of the recorded body left out)

# KB cyber_source_on_demand_spec.rb, second report: authorized, held for Decision Manager review.
KB_REPORT_REVIEW = """\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE Report SYSTEM "https://ebctest.cybersource.com/ebctest/reports/dtd/tdr_1_6.dtd">
<Report xmlns="https://ebctest.cybersource.com/ebctest/reports/dtd/tdr_1_6.dtd"
        Name="Transaction Detail"
        Version="1.6"
        MerchantID="ok_go"
        ReportStartDate="2009-05-26T18:30:00-08:00"
        ReportEndDate="2009-05-27T18:30:00-08:00">
  <Requests>
    <Request RequestID="2434465504100167904567"
             RequestDate="2009-05-27T17:49:10+05:30"
             MerchantReferenceNumber="1234"
             Source="SCMP API"
             User=""
             SubscriptionID=""
             TransactionReferenceNumber="00013791KV8BZF3P">
      <ApplicationReplies>
        <ApplicationReply Name="ics_auth">
          <RCode>1</RCode>
          <RFlag>SOK</RFlag>
          <RMsg>Request was processed successfully.</RMsg>
        </ApplicationReply>
        <ApplicationReply Name="ics_decision">
          <RCode>0</RCode>
          <RFlag>DREVIEW</RFlag>
          <RMsg>Decision is REVIEW.</RMsg>
        </ApplicationReply>
        <ApplicationReply Name="ics_decision_early">
          <RCode>1</RCode>
          <RFlag/>
        </ApplicationReply>
        <ApplicationReply Name="ics_score">
          <RCode>1</RCode>
          <RFlag>DSCORE</RFlag>
          <RMsg>Score exceeds threshold. Score = 84</RMsg>
        </ApplicationReply>
      </ApplicationReplies>
      <PaymentData>
        <PaymentRequestID>2434465504100167904567</PaymentRequestID>
        <PaymentProcessor>smartpay</PaymentProcessor>
        <Amount>2.00</Amount>
        <CurrencyCode>USD</CurrencyCode>
        <TotalTaxAmount>0.00</TotalTaxAmount>
        <AuthorizationType>O</AuthorizationType>
        <AuthorizationCode>888888</AuthorizationCode>
        <AVSResult>I1</AVSResult>
        <AVSResultMapped>X</AVSResultMapped>
        <GrandTotal>2.00</GrandTotal>
        <ACHVerificationResult>100</ACHVerificationResult>
      </PaymentData>
      <MerchantDefinedData>
        <field1 name="mdd1">ca</field1>
      </MerchantDefinedData>
    </Request>
  </Requests>
</Report>
"""  # (BillTo, ShipTo, PaymentMethod, LineItems, RiskData, ProfileList, TravelData left out)

# CyberSource's Magento plugin, ECheck HTTPClientTest: an eCheck debit sent to the processor.
CYBS_REPORT_ECHECK = """\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE Report SYSTEM "https://ebctest.cybersource.com/ebctest/reports/dtd/tdr_1_5.dtd">

<Report xmlns="https://ebctest.cybersource.com/ebctest/reports/dtd/tdr_1_5.dtd" Name="Transaction Detail" Version="1.5" MerchantID="chtest" ReportStartDate="2017-02-23 15:51:07.460+00:00" ReportEndDate="2017-02-23 15:51:07.460+00:00">
  <Requests>
    <Request MerchantReferenceNumber="000000123" RequestDate="2017-02-01T00:28:59+00:00" RequestID="4859089398406650701013" SubscriptionID="" Source="SOAP Toolkit API" TransactionReferenceNumber="02XFZ3GGIYG4S5PL">
      <ApplicationReplies>
        <ApplicationReply Name="ics_ecp_debit">
          <RCode>1</RCode>
          <RFlag>SOK</RFlag>
          <RMsg>Request was processed successfully.</RMsg>
        </ApplicationReply>
      </ApplicationReplies>
      <PaymentData>
        <PaymentRequestID>4859089398406650701013</PaymentRequestID>
        <PaymentProcessor>cardinal</PaymentProcessor>
        <Amount>37.00</Amount>
        <CurrencyCode>USD</CurrencyCode>
        <TotalTaxAmount>0.00</TotalTaxAmount>
        <EventType>TRANSMITTED</EventType>
      </PaymentData>
    </Request>
  </Requests>
</Report>
"""  # (BillTo, ShipTo, PaymentMethod and LineItems of the recorded body left out)


def _report(requests: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Report xmlns="https://ebc.cybersource.com/ebc/reports/dtd/tdr_1_7.dtd" Name="Transaction Detail"'
        ' Version="1.7" MerchantID="acme_corp" ReportStartDate="2026-01-02T03:04:05.000+00:00"'
        f' ReportEndDate="2026-01-02T03:04:05.000+00:00"><Requests>{requests}</Requests></Report>'
    )


def _sale(request_id: str, bill_flag: str = "1", extra: str = "", event: str = "") -> str:
    event_type = f"<EventType>{event}</EventType>" if event else ""
    return (
        f'<Request MerchantReferenceNumber="{KEY}" RequestDate="2026-01-02T03:04:05+00:00"'
        f' RequestID="{request_id}" SubscriptionID="" Source="SOAP Toolkit API">'
        '<ApplicationReplies><ApplicationReply Name="ics_auth"><RCode>1</RCode><RFlag>SOK</RFlag>'
        '</ApplicationReply><ApplicationReply Name="ics_bill"><RCode>'
        f"{bill_flag}</RCode><RFlag>SOK</RFlag></ApplicationReply></ApplicationReplies>"
        "<PaymentData><Amount>12.30</Amount><CurrencyCode>USD</CurrencyCode>"
        f"{event_type}</PaymentData></Request>{extra}"
    )


def _follow_up(request_id: str, predecessor: str, service: str) -> str:
    return (
        f'<Request MerchantReferenceNumber="{KEY}" RequestDate="2026-01-02T04:00:00+00:00"'
        f' RequestID="{request_id}" PredecessorRequestID="{predecessor}">'
        f'<ApplicationReplies><ApplicationReply Name="{service}"><RCode>1</RCode>'
        "<RFlag>SOK</RFlag></ApplicationReply></ApplicationReplies>"
        "<PaymentData><Amount>12.30</Amount><CurrencyCode>USD</CurrencyCode></PaymentData></Request>"
    )


# Fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def cybersource():
    return plugin(
        "cybersource", GatewayConfig("https://ics2wstest.ic3.com", CREDENTIALS, timeout=5)
    )


def charge_request(**kw):
    fields = dict(operation="charge", idempotency_key=KEY, order_id="INV-7",
                  amount=Money.parse("12.30", "USD"), token="9876543210987654321098")  # fmt: skip
    fields.update(kw)
    return GatewayRequest(**fields)


def _message(call) -> ET.Element:
    envelope = ET.fromstring(call.body)
    assert envelope.tag == f"{SOAP}Envelope"
    (message,) = envelope.find(f"{SOAP}Body")
    assert message.tag == f"{CYBS}requestMessage"
    return message


def _fields(element: ET.Element) -> list:
    """An element's children as (local name, text or attributes or children), in order."""
    shaped = []
    for child in element:
        name = child.tag.split("}")[-1]
        if len(child):
            shaped.append((name, dict(child.attrib), _fields(child)))
        elif child.attrib:
            shaped.append((name, dict(child.attrib), child.text))
        else:
            shaped.append((name, child.text))
    return shaped


# Requests -----------------------------------------------------------------------------------------


def test_a_charge_is_a_sale_of_the_subscription_keyed_by_the_idempotency_key(cybersource):
    call = cybersource.build("charge", charge_request())
    assert (call.method, call.url) == (
        "POST",
        "https://ics2wstest.ic3.com/commerce/1.x/transactionProcessor",
    )
    assert call.headers == {
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": "runTransaction",
        "Accept": "text/xml",
    }
    assert _fields(_message(call)) == [
        ("merchantID", "acme_corp"),
        ("merchantReferenceCode", KEY),
        ("purchaseTotals", {}, [("currency", "USD"), ("grandTotalAmount", "12.30")]),
        ("recurringSubscriptionInfo", {}, [("subscriptionID", "9876543210987654321098")]),
        ("merchantDefinedData", {}, [("mddField", {"id": "1"}, "INV-7")]),
        ("ccAuthService", {"run": "true"}, None),
        ("ccCaptureService", {"run": "true"}, None),
    ]


def test_every_request_carries_a_ws_security_username_token(cybersource):
    envelope = ET.fromstring(cybersource.build("charge", charge_request()).body)
    security = envelope.find(f"{SOAP}Header/{WSSE}Security")
    assert security.get(f"{SOAP}mustUnderstand") == "1"
    token = security.find(f"{WSSE}UsernameToken")
    assert token.find(f"{WSSE}Username").text == "acme_corp"
    password = token.find(f"{WSSE}Password")
    assert (password.text, password.get("Type")) == ("tk_SECRET_value", PASSWORD_TEXT)


def test_amounts_are_decimal_strings_in_the_currency_units(cybersource):
    call = cybersource.build("charge", charge_request(amount=Money.parse("1500", "JPY")))
    totals = _message(call).find(f"{CYBS}purchaseTotals")
    assert [(e.tag.split("}")[1], e.text) for e in totals] == [
        ("currency", "JPY"),
        ("grandTotalAmount", "1500"),
    ]


def test_text_is_escaped_by_the_xml_library(cybersource):
    call = cybersource.build("charge", charge_request(order_id="INV <7> & Co"))
    assert b"INV &lt;7&gt; &amp; Co" in call.body
    mdd = _message(call).find(f"{CYBS}merchantDefinedData/{CYBS}mddField")
    assert mdd.text == "INV <7> & Co"


def test_a_refund_credits_the_capture_under_the_charges_reference_code(cybersource):
    request = charge_request(
        operation="refund", idempotency_key="f" * 32, original_key=KEY,
        reference="2004333231260008401927", token=None,
    )  # fmt: skip
    call = cybersource.build("refund", request)
    assert call.url.endswith("/commerce/1.x/transactionProcessor")
    assert _fields(_message(call)) == [
        ("merchantID", "acme_corp"),
        ("merchantReferenceCode", KEY),
        ("purchaseTotals", {}, [("currency", "USD"), ("grandTotalAmount", "12.30")]),
        ("ccCreditService", {"run": "true"}, [("captureRequestID", "2004333231260008401927")]),
    ]


def test_a_void_names_the_charges_request_id(cybersource):
    request = charge_request(operation="void", idempotency_key="f" * 32, original_key=KEY,
                             reference="2004333231260008401927", token=None)  # fmt: skip
    assert _fields(_message(cybersource.build("void", request))) == [
        ("merchantID", "acme_corp"),
        ("merchantReferenceCode", KEY),
        ("voidService", {"run": "true"}, [("voidRequestID", "2004333231260008401927")]),
    ]


def test_a_lookup_by_request_id_asks_the_transaction_query_with_the_report_user(cybersource):
    request = GatewayRequest("lookup", "f" * 32, "INV-7", reference="2004333231260008401927",
                             original_key=KEY)  # fmt: skip
    call = cybersource.build("lookup", request)
    assert (call.method, call.url) == ("POST", "https://ebctest.cybersource.com/ebctest/Query")
    assert call.headers == {
        "Authorization": "Basic " + base64.b64encode(b"acme_reports:rp_SECRET_value").decode(),
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "text/xml",
    }
    assert parse_qs(call.body) == {
        "merchantID": ["acme_corp"],
        "type": ["transaction"],
        "subtype": ["transactionDetail"],
        "versionNumber": ["1.7"],
        "requestID": ["2004333231260008401927"],
        "includeExtendedDetail": ["Related"],
    }


def test_a_lookup_of_a_timed_out_charge_asks_by_its_reference_code_and_day(cybersource):
    with time_machine.travel(datetime(2026, 3, 4, 23, 59), tick=False):
        call = cybersource.build(
            "lookup", GatewayRequest("lookup", "f" * 32, "INV-7", original_key=KEY)
        )
    form = parse_qs(call.body)
    assert (form["merchantReferenceNumber"], form["targetDate"]) == ([KEY], ["20260304"])
    assert "requestID" not in form


@pytest.mark.parametrize(
    ("base_url", "query_url"),
    [
        ("https://ics2wsa.ic3.com", "https://ebc.cybersource.com/ebc/Query"),
        ("https://ics2wstesta.ic3.com/", "https://ebctest.cybersource.com/ebctest/Query"),
        ("http://127.0.0.1:5081/cybersource", "http://127.0.0.1:5081/cybersource/ebc/Query"),
    ],
)
def test_the_query_lives_on_the_business_center_host_of_the_soap_host(base_url, query_url):
    gateway = plugin("cybersource", GatewayConfig(base_url, CREDENTIALS))
    request = GatewayRequest("lookup", "f" * 32, "INV-7", reference="1")
    assert gateway.build("lookup", request).url == query_url


def test_a_lookup_without_a_report_user_is_not_sent():
    creds = {"merchant_id": "acme_corp", "transaction_key": "tk_SECRET_value"}
    gateway = plugin("cybersource", GatewayConfig("http://127.0.0.1:1", creds))
    result = gateway.lookup(GatewayRequest("lookup", "f" * 32, "INV-7", original_key=KEY))
    assert result.status is S.SYSTEM_FAIL
    assert "report_username" in result.reason


@pytest.mark.parametrize(
    ("operation", "changes", "problem"),
    [
        ("charge", {"token": None}, "payment method token"),
        ("charge", {"amount": None}, "amount"),
        ("refund", {"reference": None}, "requestID"),
        ("void", {"reference": None}, "requestID"),
        ("lookup", {"reference": None, "original_key": None}, "requestID or its idempotency key"),
        ("capture", {}, "unknown operation"),
    ],
)
def test_a_request_missing_what_it_needs_is_not_built(cybersource, operation, changes, problem):
    with pytest.raises(CallNotMade, match=problem):
        cybersource.build(operation, charge_request(operation=operation, **changes))


def test_a_missing_credential_is_a_system_fail_and_nothing_is_sent():
    bare = plugin("cybersource", GatewayConfig("http://127.0.0.1:1", {"merchant_id": "m"}))
    result = bare.charge(charge_request())
    assert result.status is S.SYSTEM_FAIL
    assert "missing credential transaction_key" in result.message


# Recorded answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "operation", "status", "code", "message", "reference"),
    [
        (AM_PURCHASE, "charge", S.SUCCESS, "100", "ACCEPT: Successful transaction",
         "2004333231260008401927"),
        (AM_LIVE_SALE, "charge", S.SUCCESS, "100", "ACCEPT: Successful transaction",
         "4335093172165000001515"),
        (AM_INVALID_ACCOUNT, "charge", S.PERMANENT_FAIL, "231", "REJECT: Invalid account number",
         "2004338415330008402434"),
        (AM_REVIEW, "charge", S.REQUIRES_REVIEW, "480",
         "REVIEW: The order is marked for review by Decision Manager", "1842651133440156177166"),
        (AM_DECISION_MANAGER_REJECT, "charge", S.PERMANENT_FAIL, "481",
         "REJECT: The order has been rejected by Decision Manager", "1841784762620176127166"),
        (AM_MISSING_FIELD, "charge", S.SYSTEM_FAIL, "101",
         "REJECT: Request is missing one or more required fields (missing: c:billTo/c:country)",
         "5676453399086696204061"),
        (AM_INVALID_FIELD, "charge", S.VALIDATION_ERROR, "102",
         "REJECT: One or more fields contains invalid data (invalid: c:billTo/c:postalCode)",
         "5676926465076767004068"),
        (AM_CVV_MISMATCH, "charge", S.VALIDATION_ERROR, "230",
         "REJECT: The authorization request was approved by the issuing bank but declined by "
         "CyberSource because it did not pass the card verification check "
         "(invalid: c:billTo/c:postalCode)", "5676926465076767004068"),
        (AM_REFUND, "refund", S.SUCCESS, "100", "ACCEPT: Successful transaction",
         "2009312387810008401927"),
        (AM_VOID, "void", S.SUCCESS, "100", "ACCEPT: Successful transaction",
         "4694798504476543904007"),
    ],
)  # fmt: skip
def test_recorded_replies_read_as_cybersource_meant_them(
    cybersource, body, operation, status, code, message, reference
):
    result = cybersource.interpret(200, {"Content-Type": "text/xml"}, body, operation)
    assert (result.status, result.code, result.unmapped) == (status, code, False)
    assert result.message == message
    assert result.reference == reference
    assert result.guidance


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (KB_BAD_PASSWORD, "Security Data : UsernameToken authentication failed."),
        (KB_PASSWORD_EXPIRED, "Security Data : Merchant password has expired."),
    ],
)
def test_rejected_credentials_are_a_soap_fault_and_a_system_fail(cybersource, body, message):
    result = cybersource.interpret(500, {"Content-Type": "text/xml"}, body)
    assert (result.status, result.code, result.message) == (
        S.SYSTEM_FAIL,
        "fault:FailedCheck",
        message,
    )
    assert result.reference is None


def test_the_seed_example_151_is_indeterminate(cybersource):
    assert cybersource.mapping.lookup("151").status is S.INDETERMINATE
    body = AM_PURCHASE.replace("<c:decision>ACCEPT</c:decision><c:reasonCode>100</c:reasonCode>",
                               "<c:decision>ERROR</c:decision><c:reasonCode>151</c:reasonCode>")  # fmt: skip
    result = cybersource.interpret(200, {}, body)
    assert (result.status, result.code) == (S.INDETERMINATE, "151")
    assert result.message == "ERROR: The request was received but a server time-out occurred"


@pytest.mark.parametrize(
    ("code", "tool"),
    [
        ("400", "fraud score"),
        ("481", "Decision Manager"),
        ("520", "Smart Authorization"),
    ],
)
def test_a_fraud_tools_rejection_is_never_retried_and_a_person_reviews_it_first(
    cybersource, code, tool
):
    # The issuer approved (ccAuthReply 100); the merchant's own fraud rules said no (top level).
    body = AM_PURCHASE.replace("<c:decision>ACCEPT</c:decision><c:reasonCode>100</c:reasonCode>",
                               f"<c:decision>REJECT</c:decision><c:reasonCode>{code}</c:reasonCode>")  # fmt: skip
    result = cybersource.interpret(200, {"Content-Type": "text/xml"}, body)
    assert (result.status, result.code) == (S.PERMANENT_FAIL, code)  # the retry schedule skips it
    assert tool in result.guidance or tool in result.message
    assert "reviews" in result.guidance
    assert "before the customer is charged again" in result.guidance


def test_an_order_decision_manager_holds_for_review_locks_the_invoice_until_a_person_decides(
    cybersource,
):
    result = cybersource.interpret(200, {"Content-Type": "text/xml"}, AM_REVIEW)
    assert (result.status, result.code) == (S.REQUIRES_REVIEW, "480")
    assert "Decision Manager" in result.guidance
    assert "before the customer is charged again" in result.guidance


def test_a_server_fault_may_have_moved_money(cybersource):
    body = KB_BAD_PASSWORD.replace("wsse:FailedCheck", "soap:Server")
    assert cybersource.interpret(500, {}, body).status is S.INDETERMINATE


def test_the_top_level_reason_code_decides_not_the_service_replies(cybersource):
    # AM_REVIEW's ccAuthReply says 100; the request as a whole is 480.
    assert cybersource.interpret(200, {}, AM_REVIEW).code == "480"


# Other shapes of the same answer -----------------------------------------------------------------

REORDERED = """\ufeff<?xml version="1.0" encoding="utf-8"?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:extra="urn:example">
  <S:Body>
    <replyMessage xmlns="urn:schemas-cybersource-com:transaction-data-1.219">
      <ccAuthReply>  <reasonCode>100</reasonCode>  </ccAuthReply>
      <extra:note>ignored</extra:note>
      <reasonCode>
        100
      </reasonCode>
      <requestToken>Afvvj7Ke2Fmsbq0</requestToken>
      <requestID> 2004333231260008401927 </requestID>
      <decision>ACCEPT</decision>
      <newField>CyberSource may add fields at any time</newField>
    </replyMessage>
  </S:Body>
</S:Envelope>
"""


def test_field_order_prefixes_whitespace_bom_and_extra_fields_do_not_matter(cybersource):
    result = cybersource.interpret(200, {"X-Other": "1"}, REORDERED)
    assert (result.status, result.code, result.reference) == (
        S.SUCCESS,
        "100",
        "2004333231260008401927",
    )


def test_a_bom_decoded_as_latin_1_is_still_a_bom(cybersource):
    mangled = "\u00ef\u00bb\u00bf" + AM_PURCHASE
    assert cybersource.interpret(200, {}, mangled).status is S.SUCCESS


def test_an_unknown_reason_code_falls_back_to_the_default_and_is_marked_unmapped(cybersource):
    body = AM_INVALID_ACCOUNT.replace("<c:reasonCode>231</c:reasonCode><c:requestToken>",
                                      "<c:reasonCode>999</c:reasonCode><c:requestToken>")  # fmt: skip
    result = cybersource.interpret(200, {}, body)
    assert (result.status, result.code, result.unmapped) == (S.SYSTEM_FAIL, "999", True)
    assert result.reference == "2004338415330008402434"
    assert "codes.yaml" in result.guidance


@pytest.mark.parametrize(
    ("http_status", "body"),
    [
        (200, AM_MALFORMED),
        (200, AM_INVALID_XML),
        (502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        (500, "<!DOCTYPE html><html><head><title>Error</title></head><body>Oops</body></html>"),
        (503, "Service Unavailable"),
        (200, ""),
        (200, "<html><body>a proxy page</body></html>"),
        (200, '<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"/>'),
        (200, AM_PURCHASE.replace("<c:reasonCode>100</c:reasonCode><c:requestToken>", "<c:requestToken>")),
        (500, KB_BAD_PASSWORD.replace("<faultcode>wsse:FailedCheck</faultcode>", "")),
    ],
)  # fmt: skip
def test_an_unreadable_answer_is_indeterminate_with_the_reason(cybersource, http_status, body):
    result = cybersource.interpret(http_status, {}, body)
    assert result.status is S.INDETERMINATE
    assert result.code is None
    assert result.reason.startswith("Unreadable answer")


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>&lol3;</S:Body></S:Envelope>"""
EXTERNAL = """<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>&e;</S:Body></S:Envelope>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL])
def test_an_answer_that_declares_entities_is_not_expanded_but_unreadable(cybersource, body):
    for operation in ("charge", "lookup"):
        result = cybersource.interpret(200, {}, body, operation=operation)
        assert result.status is S.INDETERMINATE and result.reason.startswith("Unreadable answer")


# Lookups -------------------------------------------------------------------------------------------


def test_a_report_of_a_capture_sent_to_the_processor_is_settled(cybersource):
    result = cybersource.interpret(200, {}, KB_REPORT_CAPTURE, operation="lookup")
    assert (result.status, result.code, result.reference) == (
        S.SUCCESS,
        "query:200",
        "2210804330010167904567",
    )
    (finding,) = result.findings
    assert finding.state is Settlement.SETTLED
    assert finding.amount == Money.parse("1.81", "EUR")
    assert finding.at == datetime(2008, 9, 10, 22, 0, 8)
    assert finding.code is None


def test_a_report_of_an_order_under_review_is_unsettled_with_code_480(cybersource):
    result = cybersource.interpret(200, {}, KB_REPORT_REVIEW, operation="lookup")
    (finding,) = result.findings
    assert (finding.state, finding.code, finding.reference) == (
        Settlement.UNSETTLED,
        "480",
        "2434465504100167904567",
    )
    assert finding.amount == Money.parse("2.00", "USD")
    assert finding.at == datetime(2009, 5, 27, 12, 19, 10)
    assert cybersource.mapping.lookup(finding.code).status is S.REQUIRES_REVIEW


def test_a_report_of_an_echeck_debit_sent_to_the_processor_is_settled(cybersource):
    (finding,) = cybersource.interpret(200, {}, CYBS_REPORT_ECHECK, operation="lookup").findings
    assert (finding.state, finding.amount) == (Settlement.SETTLED, Money.parse("37.00", "USD"))


@pytest.mark.parametrize(
    ("requests", "state"),
    [
        (_sale("1"), Settlement.UNSETTLED),
        (_sale("1", event="TRANSMITTED"), Settlement.SETTLED),
        (_sale("1", extra=_follow_up("2", "1", "ics_void")), Settlement.VOIDED),
        (_sale("1", event="TRANSMITTED", extra=_follow_up("2", "1", "ics_credit")),
         Settlement.REFUNDED),
        (_sale("1").replace("<RCode>1</RCode>", "<RCode>0</RCode>"), Settlement.DECLINED),
    ],
)  # fmt: skip
def test_a_report_tells_what_became_of_the_charge(cybersource, requests, state):
    result = cybersource.interpret(200, {}, _report(requests), operation="lookup")
    assert result.status is S.SUCCESS
    (finding,) = result.findings
    assert (finding.state, finding.reference) == (state, "1")
    assert finding.amount == Money.parse("12.30", "USD")


def test_a_report_adds_up_the_credits_of_a_capture_and_a_refused_one_gave_nothing(cybersource):
    def credit(request_id: str, amount: str, code: str = "1") -> str:
        return (
            _follow_up(request_id, "1", "ics_credit")
            .replace("12.30", amount)
            .replace("<RCode>1</RCode>", f"<RCode>{code}</RCode>")
        )

    def found(*credits: str):
        body = _report(_sale("1", event="TRANSMITTED", extra="".join(credits)))
        (finding,) = cybersource.interpret(200, {}, body, operation="lookup").findings
        return finding

    part = found(credit("2", "5.00"), credit("3", "2.00", code="0"))
    assert (part.state, part.refunded, part.held) == (
        Settlement.SETTLED, Money.parse("5.00", "USD"), Money.parse("7.30", "USD"),
    )  # fmt: skip
    assert part.partly_refunded
    whole = found(credit("2", "5.00"), credit("3", "7.30"))
    assert (whole.state, whole.refunded, whole.held) == (
        Settlement.REFUNDED, Money.parse("12.30", "USD"), None,
    )  # fmt: skip
    # No credit in the report: it says nothing of refunds.
    assert found().refunded is None


def test_a_report_without_requests_means_the_gateway_holds_nothing(cybersource):
    result = cybersource.interpret(200, {}, _report(""), operation="lookup")
    assert (result.status, result.code, result.findings) == (S.SUCCESS, "query:200", ())
    assert result.message == "No charge found"


@pytest.mark.parametrize(
    ("http_status", "code"),
    [(401, "query:401"), (400, "query:400")],
)
def test_the_query_refusing_is_a_system_fail(cybersource, http_status, code):
    page = "<html><head><title>401 Unauthorized</title></head><body>Login failed.</body></html>"
    result = cybersource.interpret(http_status, {}, page, operation="lookup")
    assert (result.status, result.code, result.findings) == (S.SYSTEM_FAIL, code, ())


@pytest.mark.parametrize(
    ("http_status", "body"),
    [
        (200, "<html><body>Business Center maintenance</body></html>"),
        (200, ""),
        (502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),
        (200, AM_PURCHASE),
        (200, '<Report Name="Transaction Detail"/>'),
        (200, _report(_sale("1").replace("<Amount>12.30</Amount>", "<Amount>12.3x</Amount>"))),
        (200, _report(_sale("1").replace(' RequestID="1"', ""))),
        (200, _report('<Request RequestID="9"><ApplicationReplies><ApplicationReply Name="ics_score">'
                      "<RCode>1</RCode></ApplicationReply></ApplicationReplies></Request>")),
    ],
)  # fmt: skip
def test_an_unreadable_lookup_never_says_the_gateway_holds_nothing(cybersource, http_status, body):
    result = cybersource.interpret(http_status, {}, body, operation="lookup")
    assert result.status is S.INDETERMINATE
    assert result.findings == ()


# Scrubbing ------------------------------------------------------------------------------------------


def test_scrub_removes_credentials_the_subscription_and_request_tokens(cybersource):
    raw = (
        '<wsse:UsernameToken><wsse:Username>acme_corp</wsse:Username><wsse:Password Type="x#PasswordText">'
        "tk_SECRET_value</wsse:Password></wsse:UsernameToken><requestMessage><merchantID>acme_corp"
        "</merchantID><merchantReferenceCode>INV-1</merchantReferenceCode><recurringSubscriptionInfo>"
        "<subscriptionID>9876543210987654321098</subscriptionID></recurringSubscriptionInfo><card>"
        "<accountNumber>4111111111111111</accountNumber><cvNumber>123</cvNumber></card>"
        "<c:requestToken>Afvvj7Ke2Fmsbq0wHF</c:requestToken><c:requestID>2004333231260008401927"
        '</c:requestID><Report MerchantID="acme_corp" Name="Transaction Detail"><Request '
        "SubscriptionID='9876543210987654321098' RequestID=\"1\"/>"
    )
    assert cybersource.scrub(raw) == (
        '<wsse:UsernameToken><wsse:Username>[FILTERED]</wsse:Username><wsse:Password Type="x#PasswordText">'
        "[FILTERED]</wsse:Password></wsse:UsernameToken><requestMessage><merchantID>[FILTERED]"
        "</merchantID><merchantReferenceCode>INV-1</merchantReferenceCode><recurringSubscriptionInfo>"
        "<subscriptionID>[FILTERED]</subscriptionID></recurringSubscriptionInfo><card>"
        "<accountNumber>[FILTERED]</accountNumber><cvNumber>[FILTERED]</cvNumber></card>"
        "<c:requestToken>[FILTERED]</c:requestToken><c:requestID>2004333231260008401927"
        '</c:requestID><Report MerchantID="[FILTERED]" Name="Transaction Detail"><Request '
        "SubscriptionID='[FILTERED]' RequestID=\"1\"/>"
    )


def test_scrub_removes_the_merchant_id_from_a_query_form(cybersource):
    form = "merchantID=acme_corp&type=transaction&requestID=1&merchantIDs=x"
    assert cybersource.scrub(form) == (
        "merchantID=[FILTERED]&type=transaction&requestID=1&merchantIDs=x"
    )


def test_a_built_request_keeps_no_secret_once_scrubbed(cybersource):
    body = cybersource.build("charge", charge_request()).body.decode()
    stored = cybersource.scrub(body)
    for secret in ("acme_corp", "tk_SECRET_value", "9876543210987654321098"):
        assert secret in body
        assert secret not in stored
    assert KEY in stored and "INV-7" in stored


# The mapping ------------------------------------------------------------------------------------------

# Every reason code of Active Merchant's @@response_codes, plus 105 from CyberSource's own table.
PUBLIC_CODES = [
    "100", "101", "102", "104", "105", "110", "150", "151", "152", "200", "201", "202",
    "203", "204", "205", "207", "208", "209", "210", "211", "220", "221", "222", "230",
    "231", "232", "233", "234", "235", "236", "237", "238", "239", "240", "241", "242",
    "243", "244", "246", "247", "248", "250", "251", "254", "255", "400", "450", "451",
    "452", "453", "454", "455", "456", "457", "458", "459", "460", "461", "475", "476",
    "478", "480", "481", "490", "491", "520", "700", "701", "702", "703",
]  # fmt: skip


def test_the_mapping_knows_every_public_reason_code(cybersource):
    missing = [code for code in PUBLIC_CODES if code not in cybersource.mapping.codes]
    assert missing == []


def test_the_mapping_declares_that_a_resend_is_not_safe(cybersource):
    retry = cybersource.mapping.retry
    assert (retry.resend_after_timeout, retry.duplicate_window_seconds) == (False, 900)
    assert "Single Transaction Query" in retry.lookup
