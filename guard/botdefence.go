package guard

import (
	"context"
	"errors"

	"github.com/formguard/formguard/guard/captcha"
)

// missingDefence refuses a post that lacks the form token or CAPTCHA
// field its form requires, as verify would, without a store call.
func missingDefence(p *policy, vals *fieldSet) *Error {
	if p.form.Token != nil && vals.first(p.tokenF) == "" {
		return ErrTokenInvalid.withf("form token %q missing", p.tokenF)
	}
	if p.form.Captcha != nil && vals.first(p.captchaF) == "" {
		return ErrCaptchaMissing.withf("field %q missing", p.captchaF)
	}
	return nil
}

// verify runs a bot-defence verifier and maps its errors.
func (g *Guard) verify(ctx context.Context, v captcha.Verifier, req captcha.Request, isToken bool) *Error {
	if req.Token == "" {
		if isToken {
			return ErrTokenInvalid.withf("form token %q missing", v.Field())
		}
		return ErrCaptchaMissing.withf("field %q missing", v.Field())
	}
	err := v.Verify(ctx, req)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, captcha.ErrUnavailable), errors.Is(err, captcha.ErrConfig),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return ErrCaptchaUnavailable.with(err)
	case errors.Is(err, captcha.ErrTooFast):
		return ErrTooFast.with(err)
	case errors.Is(err, captcha.ErrMissing):
		if isToken {
			return ErrTokenInvalid.with(err)
		}
		return ErrCaptchaMissing.with(err)
	case isToken:
		return ErrTokenInvalid.with(err)
	}
	return ErrCaptchaInvalid.with(err)
}

// defend runs the form's token and CAPTCHA verifiers (step 9) on a post
// whose client passed its own limits; a failure no browser causes is an
// offence.
func (g *Guard) defend(ctx context.Context, p *policy, vals *fieldSet, creq captcha.Request) *Error {
	if p.form.Token != nil {
		creq.Token = vals.first(p.tokenF)
		if e := g.verify(ctx, p.form.Token, creq, true); e != nil {
			g.penalize(ctx, creq.ClientKey)
			return e
		}
	}
	if p.form.Captcha != nil {
		creq.Token = vals.first(p.captchaF)
		if e := g.verify(ctx, p.form.Captcha, creq, false); e != nil {
			if e.Code != ErrCaptchaUnavailable.Code && e.Code != ErrCaptchaMissing.Code {
				g.penalize(ctx, creq.ClientKey)
			}
			return e
		}
	}
	return nil
}
