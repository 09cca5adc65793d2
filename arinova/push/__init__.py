"""Web Push: VAPID + aes128gcm delivery, the reply-notification trigger (websocket.md §10).

``service.PushService`` is ``state.push``; ``policy`` holds the trigger's pure rules;
``webpush`` encrypts, signs and sends; ``payload`` builds the notification JSON.
"""
