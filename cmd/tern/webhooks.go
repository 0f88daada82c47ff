package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ternmq/tern/webhook"
)

// webhookCloseTimeout bounds how long shutdown waits for the webhooks'
// queued events.
const webhookCloseTimeout = 5 * time.Second

// checkWebhooks checks the webhooks section, every entry.
func checkWebhooks(cfgs []webhook.Config) error {
	var errs []error
	for i, c := range cfgs {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("webhooks[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// startWebhooks starts the configured webhooks; their events name this
// host as the node. Webhooks are read at start: a reload leaves them as
// they are.
func startWebhooks(cfgs []webhook.Config, log *slog.Logger) ([]*webhook.Webhook, error) {
	node, _ := os.Hostname()
	var ws []*webhook.Webhook
	for i, c := range cfgs {
		w, err := webhook.New(c, webhook.Options{Node: node, Logger: log})
		if err != nil {
			closeWebhooks(ws, log)
			return nil, fmt.Errorf("webhooks[%d]: %w", i, err)
		}
		log.Info("webhook", "url", w.URL())
		ws = append(ws, w)
	}
	return ws, nil
}

// closeWebhooks sends what the webhooks hold, within webhookCloseTimeout
// for all of them. Closing twice is harmless.
func closeWebhooks(ws []*webhook.Webhook, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), webhookCloseTimeout)
	defer cancel()
	for _, w := range ws {
		if err := w.Close(ctx); err != nil {
			log.Warn("webhook closed with events unsent", "url", w.URL(), "err", err)
		}
	}
}
